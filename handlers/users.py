"""/api/v1/users: staff list accounts and deactivate or reactivate shoppers."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.endpoints import endpoint
from schemas.common import Page
from schemas.users import UserAccountOut, UserAccountUpdate, UserQuery
from services import accounts


class UsersHandler(BaseHandler):
    @endpoint(
        "List users, oldest first",
        query=UserQuery,
        response=Page[UserAccountOut],
        auth="staff",
        errors=(400,),
    )
    async def get(self) -> None:
        filters = self.parse_query(UserQuery)
        page = self.pagination(filters)
        async with self.ctx.sessionmaker() as session:
            rows, count = await accounts.user_page(session, filters=filters, page=page)
        self.write_page([UserAccountOut.model_validate(u) for u in rows], count=count, params=page)


class UserHandler(BaseHandler):
    @endpoint(
        "Deactivate or reactivate a shopper's account",
        body=UserAccountUpdate,
        response=UserAccountOut,
        auth="staff",
        errors=(400, 403, 404),
    )
    async def patch(self, user_id: str) -> None:
        data = self.parse_body(UserAccountUpdate)
        async with self.ctx.sessionmaker() as session:
            user = await accounts.set_user_active(
                session,
                actor=self.require_user(),
                user_id=int(user_id),
                is_active=data.is_active,
                publisher=self.ctx.after_commit,
            )
        self.write_json(UserAccountOut.model_validate(user))


routes = [
    (r"/api/v1/users", UsersHandler, "users:list"),
    # At most 18 digits: any id fits a 64-bit integer; a longer one is simply unknown (404).
    (r"/api/v1/users/(?P<user_id>[0-9]{1,18})", UserHandler, "users:detail"),
]
