"""The chat's session engine (SESSION_ENGINE = "rooms.session_store"): Django's database
sessions, except that a request saving a session never undoes a room a socket joined meanwhile."""

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends import db
from django.db import router, transaction

from .selectors import SESSION_ROOMS


def rooms_copy(rooms: list[str] | None) -> list[str] | None:
    # A copy: a view that changes the session's list in place must not change what was loaded too.
    return None if rooms is None else list(rooms)


class SessionStore(db.SessionStore):
    """Django's database sessions, but a save keeps the rooms the sockets stored meanwhile.

    Django's SessionMiddleware loads the whole session when a request first reads it,
    and saves all of it back at the end when the request changed anything in it (a
    view that sets a key). A socket that joins or leaves a room in between
    (``services.session_rooms_update``, which writes the stored session under its row
    lock) would have its change overwritten by that older copy: the room lost, or
    back. So a save of an existing session that left the rooms as it loaded them reads
    the stored ones under the row lock, and writes them back with the rest.

    Why not keep the rooms in a table of their own: in the session's data they go to a
    login's new key with the rest (``cycle_key``) and end with it (a logout,
    ``clearsessions``); a table would need that done by hand. A new session (a first
    visit, a login's new key, which no socket has yet) is saved as is.
    """

    rooms_loaded: list[str] | None = None  # the rooms as this copy was loaded with

    def load(self):
        data = super().load()
        self.rooms_loaded = rooms_copy(data.get(SESSION_ROOMS))
        return data

    async def aload(self):
        data = await super().aload()
        self.rooms_loaded = rooms_copy(data.get(SESSION_ROOMS))
        return data

    def save(self, must_create=False):
        if must_create or self.session_key is None:
            super().save(must_create=must_create)
            return
        with transaction.atomic(using=router.db_for_write(self.model)):
            self.rooms_merge()
            super().save()

    async def asave(self, must_create=False):
        await sync_to_async(self.save)(must_create=must_create)

    def rooms_merge(self) -> None:
        """Put the stored rooms into this copy, unless it changed them; under the row lock until commit."""
        data = self._get_session()
        if data.get(SESSION_ROOMS) != self.rooms_loaded:
            return  # changed by this copy (a view that leaves a room): its rooms win
        stored = (
            self.model.objects.select_for_update()
            .filter(session_key=self.session_key)
            .values_list("session_data", flat=True)
            .first()
        )
        if stored is None:
            return  # deleted meanwhile: the save fails as Django's does (UpdateError)
        rooms = self.decode(stored).get(SESSION_ROOMS)
        if rooms is None:
            data.pop(SESSION_ROOMS, None)
        else:
            data[SESSION_ROOMS] = rooms
        self.rooms_loaded = rooms_copy(rooms)
