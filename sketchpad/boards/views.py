from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from .forms import BoardForm
from .models import Board
from .selectors import board_list, thumbnail_get
from .services import author_ensure, board_create, board_create_allow
from .wire import thumbnail_url


@require_http_methods(["GET", "POST"])
def gallery(request):
    form = BoardForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        if board_create_allow(client=request.META["REMOTE_ADDR"]):
            return redirect(
                board_create(title=form.cleaned_data["title"], creator=author_ensure(session=request.session))
            )
        form.add_error(None, "Too many new boards from your address: try again in an hour.")
        return gallery_render(request, form=form, status=429)
    return gallery_render(request, form=form, status=400 if form.errors else 200)


def gallery_render(request, *, form: BoardForm, status: int):
    boards = [
        {"board": board, "thumbnail_url": thumbnail_url(slug=board.slug, version=board.thumbnail_version)}
        for board in board_list()
    ]
    return render(request, "boards/gallery.html", {"boards": boards, "form": form}, status=status)


@require_GET
def board_detail(request, slug):
    board = get_object_or_404(Board.objects.defer("thumbnail"), slug=slug)
    # Before the page opens its socket, so the socket knows whose strokes it may undo.
    author = author_ensure(session=request.session)
    may_clear = author == board.creator or request.user.is_staff
    return render(request, "boards/board.html", {"board": board, "may_clear": may_clear})


@require_GET
def board_thumbnail(request, slug):
    thumbnail = thumbnail_get(slug=slug)
    if thumbnail is None:
        raise Http404("No thumbnail yet")
    png, version = thumbnail
    response = HttpResponse(png, content_type="image/png")
    # Each rendering has its own URL (?v=<version>), so a browser may keep it for good.
    current = request.GET.get("v") == str(version)
    response["Cache-Control"] = "public, max-age=31536000, immutable" if current else "no-cache"
    return response
