from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from realtime_common.tickets import ticket_grant

from . import demo
from .routing import SOCKET_PATH
from .selectors import room_list
from .services import ticket_rate_allow


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs):
        # The seeded demo accounts (manage.py seed) only exist in development.
        return {**super().get_context_data(**kwargs), "demo_users": demo.USERS if settings.DEBUG else []}


def signup(request):
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save())
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form})


@require_GET
@login_required
def index(request):
    return render(request, "rooms/index.html", {"rooms": room_list()})


@require_GET
@login_required
def chat(request):
    # With its sockets on an origin of their own, the page logs each one in with a ticket.
    return render(request, "rooms/chat.html", {"rooms": room_list(), "socket_tickets": bool(settings.SOCKET_ORIGIN)})


@require_POST
@never_cache
def ws_ticket(request):
    """A single-use ticket to this browser's login, for a socket where its cookie does not go
    (the page's, on the socket origin; the terminal client's): realtime_common.tickets."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "not_logged_in", "detail": "Log in first."}, status=401)
    if not ticket_rate_allow(user_id=request.user.pk):
        # The page retries with its backoff, as after any failed attempt.
        return JsonResponse({"error": "rate_limited", "detail": "Too many tickets; wait a moment."}, status=429)
    return JsonResponse(ticket_grant(request=request, path=SOCKET_PATH))
