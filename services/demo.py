"""The demo catalogue behind `python -m app seed-demo`.

Idempotent: whatever already exists (matched by slug, code or email) is left as it
is, so running it at every start adds only what is missing and never undoes an edit.
The two demo users get a random password when they are created; it is returned once,
for the command to print, and never stored in clear.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from slugify import slugify
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.after_commit import AfterCommit
from core.security import hash_password
from models.accounts import User
from models.base import utcnow
from models.catalog import Category, Discount, Product
from services.accounts import normalize_email
from services.discounts import FIXED, PERCENT

STAFF_EMAIL = "staff@demo.example.com"
SHOPPER_EMAIL = "shopper@demo.example.com"
# Under DEBUG (what `make run` uses) the demo accounts have these passwords, listed in
# README; elsewhere each gets a random one, shown once when it is created.
DOCUMENTED_PASSWORDS = {STAFF_EMAIL: "demo-staff-password", SHOPPER_EMAIL: "demo-shopper-password"}

# Category -> (product name, price in cents).
CATALOGUE: dict[str, list[tuple[str, int]]] = {
    "Lighting": [
        ("Brass Desk Lamp", 4990),
        ("Paper Pendant Shade", 2450),
        ("Oak Floor Lamp", 12900),
        ("Linen Table Lamp", 5600),
        ("Copper Wall Light", 7900),
        ("Glass Globe Pendant", 8900),
        ("Reading Clip Light", 1990),
        ("Ceramic Night Light", 2900),
        ("Rattan Lantern", 3450),
        ("Warm LED Bulb Set", 1290),
    ],
    "Kitchen": [
        ("Cast Iron Skillet", 3990),
        ("Walnut Cutting Board", 4500),
        ("Enamel Kettle", 5200),
        ("Stoneware Mug Set", 3200),
        ("Pour-Over Coffee Dripper", 2600),
        ("Linen Tea Towels", 1800),
        ("Copper Measuring Cups", 2900),
        ("Olive Wood Spoons", 1500),
        ("Glass Storage Jars", 2200),
        ("Chef's Knife", 8900),
    ],
    "Office": [
        ("Felt Desk Mat", 3500),
        ("Leather Notebook", 2800),
        ("Brass Pen", 4200),
        ("Oak Monitor Stand", 6900),
        ("Cork Pin Board", 2400),
        ("Wire Letter Tray", 1900),
        ("Walnut Pencil Cup", 1600),
        ("Canvas Document Bag", 5400),
        ("Linen Binder", 1400),
        ("Steel Desk Organiser", 3100),
    ],
    "Outdoors": [
        ("Wool Picnic Blanket", 6500),
        ("Enamel Camp Mug", 1400),
        ("Canvas Day Pack", 7900),
        ("Folding Stool", 4600),
        ("Garden Kneeler", 2300),
        ("Copper Watering Can", 5900),
        ("Cedar Bird Feeder", 3300),
        ("Stainless Flask", 2900),
        ("Solar String Lights", 3900),
        ("Hammock", 8400),
    ],
    "Textiles": [
        ("Linen Cushion Cover", 3200),
        ("Merino Throw", 11900),
        ("Cotton Bath Towel", 2700),
        ("Waffle Bathrobe", 8900),
        ("Jute Rug", 9900),
        ("Wool Slippers", 4900),
        ("Linen Napkins", 2400),
        ("Quilted Bedspread", 15900),
        ("Velvet Cushion", 3800),
        ("Cotton Tote", 1200),
    ],
}


@dataclass
class SeedReport:
    categories: int = 0
    products: int = 0
    discounts: int = 0
    # email -> password of each user created by this run.
    new_users: dict[str, str] = field(default_factory=dict)
    # True when the demo users have the documented passwords (DEBUG).
    documented: bool = False


async def seed_demo(
    session: AsyncSession, *, publisher: AfterCommit, documented_passwords: bool = False
) -> SeedReport:
    """Add whatever part of the demo catalogue and demo users is missing (one
    transaction); returns what was added. With `documented_passwords` (DEBUG), the demo
    users get (again) the passwords of DOCUMENTED_PASSWORDS; otherwise a new user gets
    a random one and an existing user keeps hers."""
    report = SeedReport(documented=documented_passwords)
    async with session.begin():
        categories = await _ensure_categories(session, report)
        await _ensure_products(session, categories, report)
        await _ensure_discounts(session, categories["lighting"], report)
        for email, staff in ((STAFF_EMAIL, True), (SHOPPER_EMAIL, False)):
            password = DOCUMENTED_PASSWORDS[email] if documented_passwords else None
            await _ensure_user(session, email, staff=staff, password=password, report=report)
    await publisher.catalog_changed()
    return report


async def _ensure_categories(session: AsyncSession, report: SeedReport) -> dict[str, Category]:
    existing = {c.slug: c for c in await session.scalars(select(Category))}
    for name in CATALOGUE:
        slug = slugify(name)
        if slug not in existing:
            existing[slug] = Category(name=name, slug=slug)
            session.add(existing[slug])
            report.categories += 1
    await session.flush()
    return existing


async def _ensure_products(
    session: AsyncSession, categories: dict[str, Category], report: SeedReport
) -> None:
    existing = set(await session.scalars(select(Product.slug)))
    for category_name, products in CATALOGUE.items():
        category = categories[slugify(category_name)]
        for index, (name, price_cents) in enumerate(products):
            slug = slugify(name)
            if slug in existing:
                continue
            session.add(
                Product(
                    slug=slug,
                    name=name,
                    description=f"{name}, from the {category_name.lower()} range.",
                    price_cents=price_cents,
                    # The last of each category is sold out, so the demo shows both states.
                    stock=0 if index == len(products) - 1 else 5 + (index * 7) % 20,
                    category_id=category.id,
                )
            )
            report.products += 1


async def _ensure_discounts(session: AsyncSession, lighting: Category, report: SeedReport) -> None:
    existing = set(await session.scalars(select(Discount.code)))
    demo = [
        Discount(code="WELCOME10", kind=PERCENT, value=10, max_uses=1000),
        Discount(
            code="LIGHTING5",
            kind=FIXED,
            value=500,
            category_id=lighting.id,
            min_order_total_cents=2000,
            ends_at=utcnow() + timedelta(days=365),
        ),
    ]
    for discount in demo:
        if discount.code not in existing:
            session.add(discount)
            report.discounts += 1


async def _ensure_user(
    session: AsyncSession, email: str, *, staff: bool, password: str | None, report: SeedReport
) -> None:
    """Create the user (with `password`, or a random one); an existing user only has her
    password set again when `password` is given."""
    email = normalize_email(email)
    existing = await session.scalar(select(User).where(User.email == email))
    if existing is not None:
        if password is not None:
            existing.password_hash = await hash_password(password)
        return
    password = password or secrets.token_urlsafe(12)
    session.add(
        User(
            email=email,
            password_hash=await hash_password(password),
            full_name="Demo Staff" if staff else "Demo Shopper",
            is_staff=staff,
            email_verified=True,
        )
    )
    report.new_users[email] = password
