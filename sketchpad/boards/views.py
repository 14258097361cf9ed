from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from .forms import BoardForm
from .selectors import board_get, board_list, thumbnail_get
from .services import author_ensure, board_create
from .wire import thumbnail_url


@require_http_methods(["GET", "POST"])
def gallery(request):
    form = BoardForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        return redirect(board_create(title=form.cleaned_data["title"]))
    boards = [
        {"board": board, "thumbnail_url": thumbnail_url(slug=board.slug, version=board.thumbnail_version)}
        for board in board_list()
    ]
    return render(request, "boards/gallery.html", {"boards": boards, "form": form}, status=400 if form.errors else 200)


@require_GET
def board_detail(request, slug):
    board = board_get(slug=slug)
    if board is None:
        raise Http404("No such board")
    # Before the page opens its socket, so the socket knows whose strokes it may undo.
    author_ensure(session=request.session)
    return render(request, "boards/board.html", {"board": board})


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
