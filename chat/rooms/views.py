from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from . import demo
from .selectors import room_list


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
    return render(request, "rooms/chat.html", {"rooms": room_list()})
