"""The catalog service: generated slugs and canonical cache keys."""

from __future__ import annotations

import asyncio

import pytest

from core.after_commit import CATALOG_CACHE_GROUP
from core.context import AppContext
from services.catalog import cache_key
from services.slugs import SLUG_BASE_LENGTH
from tests.catalog_factories import create_category, create_product


async def test_slugs_are_plain_ascii_words_of_the_name(ctx: AppContext) -> None:
    assert (await create_product(ctx, "Café Crème  Lamp (Large)")).slug == "cafe-creme-lamp-large"
    assert (await create_product(ctx, "!!!")).slug == "item"
    assert (await create_category(ctx, "Outdoor & Garden")).slug == "outdoor-garden"


async def test_a_long_name_leaves_room_for_the_suffix(ctx: AppContext) -> None:
    name = "Lamp " * 39  # 195 characters
    first, second = [(await create_product(ctx, name)).slug for _ in range(2)]
    assert len(first) <= SLUG_BASE_LENGTH
    assert second == f"{first}-2"


async def test_a_slug_that_only_starts_like_another_does_not_count_as_taken(
    ctx: AppContext,
) -> None:
    await create_product(ctx, "Desk Lamp Shade")
    assert (await create_product(ctx, "Desk Lamp")).slug == "desk-lamp"


async def test_concurrent_products_with_one_name_get_distinct_slugs(ctx: AppContext) -> None:
    made = await asyncio.gather(*(create_product(ctx, "Brass Desk Lamp") for _ in range(4)))
    assert sorted(product.slug for product in made) == [
        "brass-desk-lamp",
        "brass-desk-lamp-2",
        "brass-desk-lamp-3",
        "brass-desk-lamp-4",
    ]


def test_cache_keys_ignore_parameter_order_and_absent_values() -> None:
    one = cache_key("products", {"q": "lamp", "page": 1, "category": None})
    other = cache_key("products", {"page": 1, "q": "lamp"})
    assert one == other == "products?page=1&q=lamp"
    assert cache_key("products", {"q": "a&b=c"}) != cache_key("products", {"q": "a", "b": "c"})


async def test_what_was_loaded_while_the_catalog_changed_is_not_served_later(
    ctx: AppContext,
) -> None:
    loads: list[str] = []

    async def load_during_a_write() -> bytes:
        loads.append("stale")
        await ctx.cache.invalidate(CATALOG_CACHE_GROUP)  # a write commits meanwhile
        return b"stale"

    async def load_after() -> bytes:
        loads.append("fresh")
        return b"fresh"

    assert await ctx.cache.get_or_load(CATALOG_CACHE_GROUP, "k", load_during_a_write) == b"stale"
    assert await ctx.cache.get_or_load(CATALOG_CACHE_GROUP, "k", load_after) == b"fresh"
    assert await ctx.cache.get_or_load(CATALOG_CACHE_GROUP, "k", load_after) == b"fresh"
    assert loads == ["stale", "fresh"]


@pytest.mark.settings(cache_ttl=0)
async def test_a_zero_ttl_turns_the_cache_off(ctx: AppContext) -> None:
    calls: list[int] = []

    async def load() -> bytes:
        calls.append(len(calls) + 1)
        return b"%d" % calls[-1]

    assert [await ctx.cache.get_or_load(CATALOG_CACHE_GROUP, "k", load) for _ in range(2)] == [
        b"1",
        b"2",
    ]
