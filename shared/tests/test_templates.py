"""The templates every site's live pages include."""

from django.template.loader import render_to_string


def test_the_connection_badge_starts_connecting_for_socket_js_to_update():
    badge = render_to_string("realtime_common/connection_state.html")
    # frontend/js/socket.js finds it by id and sets data-socket-state; the e2e tests wait on it.
    assert 'id="connection-state"' in badge
    assert 'data-socket-state="connecting"' in badge
    assert 'role="status"' in badge
    assert "{#" not in badge  # the comment is the template's, not the page's
