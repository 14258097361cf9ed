from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from realtime_common.streams import stream_seq

from .forms import PostForm
from .models import Liveblog
from .selectors import liveblog_list, post_list
from .services import post_create
from .wire import liveblog_stream, post_data


@require_safe
def index(request):
    return render(request, "blog/index.html", {"liveblogs": liveblog_list()})


@require_safe
def liveblog_detail(request, slug):
    liveblog = get_object_or_404(Liveblog, slug=slug)
    # The seq is read before the posts: an event in between is then replayed on
    # connect and applied again, which is harmless, instead of being skipped.
    seq = stream_seq(stream=liveblog_stream(liveblog_id=liveblog.pk))
    context = {
        "liveblog": liveblog,
        "seq": seq,
        "posts": [post_data(post=post) for post in post_list(liveblog=liveblog)],
        "form": PostForm(),
        # The seeded demo account (manage.py seed) only exists in development.
        "demo_login": settings.DEBUG,
    }
    return render(request, "blog/liveblog.html", context)


@require_safe
def liveblog_snapshot(request, slug):
    """The list again, for a page told to resync."""
    liveblog = get_object_or_404(Liveblog, slug=slug)
    seq = stream_seq(stream=liveblog_stream(liveblog_id=liveblog.pk))
    return JsonResponse({"seq": seq, "posts": [post_data(post=post) for post in post_list(liveblog=liveblog)]})


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
        return redirect(liveblog)
    return JsonResponse({"id": post.pk}, status=201)
