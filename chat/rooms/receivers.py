"""Signal receivers: a logout, from any view, closes every socket of that user."""

from django.contrib.auth.signals import user_logged_out

from .services import user_sockets_close


def logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:  # None: the visitor was not logged in
        user_sockets_close(user_id=user.pk)


def connect() -> None:
    user_logged_out.connect(logged_out, dispatch_uid="rooms.logged_out")
