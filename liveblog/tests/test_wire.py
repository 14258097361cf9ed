from blog.wire import post_html


def test_markup_is_escaped():
    assert post_html(body='<script>alert("x")</script>') == "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</p>"


def test_paragraphs_and_links():
    html = post_html(body="One\n\nTwo https://example.com/a?b=1&c=2")
    assert html == (
        "<p>One</p>\n\n<p>Two "
        '<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow">https://example.com/a?b=1&amp;c=2</a></p>'
    )


def test_javascript_urls_are_not_linked():
    assert "<a" not in post_html(body="javascript:alert(1)")
