from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from .forms import PostForm
from .models import Liveblog
from .selectors import liveblog_list, post_list, post_snapshot
from .services import post_create
from .wire import post_data, post_view


@require_safe
def index(request):
    return render(request, "blog/index.html", {"liveblogs": liveblog_list()})


@require_safe
def liveblog_detail(request, slug):
    liveblog = get_object_or_404(Liveblog, slug=slug)
    seq, posts = post_snapshot(liveblog=liveblog)
    return render(request, "blog/liveblog.html", liveblog_context(liveblog=liveblog, posts=posts) | {"seq": seq})


@require_safe
def liveblog_fragments(request, slug):
    """The same liveblog, kept up to date by htmx from the HTML its socket sends; our one
    script is an htmx extension for its badge and backoff (liveblog/README.md, "The fragments
    page's one script"). The socket sends the list again on connect, so the page needs no seq."""
    liveblog = get_object_or_404(Liveblog, slug=slug)
    posts = [post_data(post=post) for post in post_list(liveblog=liveblog)]
    return render(request, "blog/liveblog_fragments.html", liveblog_context(liveblog=liveblog, posts=posts))


def liveblog_context(*, liveblog: Liveblog, posts: list[dict]) -> dict:
    return {
        "liveblog": liveblog,
        "posts": [post_view(post=post) for post in posts],
        "form": PostForm(),
        # The seeded demo account (manage.py seed) only exists in development.
        "demo_login": settings.DEBUG,
    }


@require_safe
def liveblog_snapshot(request, slug):
    """The list again, for a page told to resync."""
    liveblog = get_object_or_404(Liveblog, slug=slug)
    seq, posts = post_snapshot(liveblog=liveblog)
    return JsonResponse({"seq": seq, "posts": posts})


@require_POST
def post_publish(request, slug):
    if not (request.user.is_active and request.user.is_staff):
        if request.accepts("text/html"):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        # The page's fetch would follow a redirect to the login page, get a 200,
        # and take the post as published: answer what happened instead.
        return JsonResponse({"errors": {"session": ["Your session expired: log in again."]}}, status=401)
    liveblog = get_object_or_404(Liveblog, slug=slug)
    form = PostForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    post = post_create(liveblog=liveblog, body=form.cleaned_data["body"])
    if request.accepts("text/html"):
        # Back to the page the form was on (the fragments page's form posts without script).
        back = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
            return redirect(back)
        return redirect(liveblog)
    return JsonResponse({"id": post.pk}, status=201)
