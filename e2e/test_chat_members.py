"""A room with more members than a list holds (chat/README.md, the chat protocol: CHAT_MEMBERS_LISTED,
100): the page shows the count of everyone, the first names, and "N more", which pages in the rest;
a change beyond the names it shows moves the count only."""

from pages import CHAT_PASSWORD as PASSWORD
from playwright.sync_api import Page, expect
from test_chat import chat_as, members, room, shell_output

SLUG = "crowd"


def crowd_enter(chat, *, slug: str, names: list[str]) -> None:
    """``names`` in the room ``slug`` (made if need be) through another process's presence entries, for
    ten minutes: no browser per member."""
    code = f"""
import asyncio
from rooms.models import Room
from rooms.presence import store_new
from rooms.presence_store import Change

room, _ = Room.objects.get_or_create(slug={slug!r}, defaults={{"title": {slug.title()!r}}})
store = store_new()

async def crowd_enter():
    adds = tuple(f"e2e-crowd {{name}}" for name in {names!r})
    await store.apply(changes=[Change(room_id=room.pk, adds=adds)], ttl=600)
    await store.close()

asyncio.run(crowd_enter())
"""
    shell_output(chat, code=code)


def expect_count(page: Page, count: int) -> None:
    expect(room(page, SLUG).locator(".members-count")).to_have_text(f"({count})")


def test_a_long_room_lists_a_page_of_names_with_the_count_and_pages_in_the_rest(new_page, chat):
    # 150 names that sort before every real user's ("-" before any letter), so the first page is theirs.
    crowd_enter(chat, slug=SLUG, names=[f"a-{number:03}" for number in range(150)])
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", SLUG)
    expect_count(alice, 151)
    expect(members(alice, SLUG)).to_have_count(100)
    expect(members(alice, SLUG).first).to_have_text("a-000")
    expect(members(alice, SLUG).last).to_have_text("a-099")
    expect(room(alice, SLUG).get_by_role("button", name="51 more")).to_be_visible()

    # bob sorts after every name alice's page lists: counted, not listed.
    bob = chat_as(new_page, second, "bob", SLUG)
    expect_count(alice, 152)
    expect(room(alice, SLUG).get_by_role("button", name="52 more")).to_be_visible()
    expect(members(alice, SLUG)).to_have_count(100)
    expect(members(alice, SLUG).filter(has_text="bob")).to_have_count(0)

    # The rest, on demand: everyone once, in order; nothing more to ask for.
    room(alice, SLUG).get_by_role("button", name="52 more").click()
    expect(members(alice, SLUG)).to_have_count(152)
    expect(members(alice, SLUG).nth(149)).to_have_text("a-149")
    expect(members(alice, SLUG).nth(150)).to_have_text("alice")
    expect(members(alice, SLUG).last).to_have_text("bob")
    expect(room(alice, SLUG).locator("[data-members-more]")).to_be_hidden()

    # A page that lists everyone lists whoever comes, and drops whoever goes.
    chat_as(new_page, first, "carol", SLUG)
    expect(members(alice, SLUG).last).to_have_text("carol")
    expect_count(alice, 153)
    room(bob, SLUG).get_by_role("button", name="Leave").click()
    expect(members(alice, SLUG).filter(has_text="bob")).to_have_count(0)
    expect_count(alice, 152)
    expect(members(alice, SLUG)).to_have_count(152)


def test_a_name_joining_within_the_names_listed_is_listed_in_the_server_s_order(new_page, chat):
    # The server orders names by code point; JS's < and sort() by UTF-16 unit, in which "𠮷" (U+20BB7,
    # two units from 0xD842) goes before "﨑" (U+FA11, e.g. 山﨑, Yamazaki). The first page ends at "𠮷田":
    # 98 of the crowd, alice, "𠮷田"; "𠮷野" comes after it.
    slug = "crowd-order"
    crowd_enter(chat, slug=slug, names=[*(f"a-{number:03}" for number in range(98)), "𠮷田", "𠮷野"])
    shell_output(
        chat,
        code="from django.contrib.auth import get_user_model\n"
        "user, _ = get_user_model().objects.get_or_create(username='﨑')\n"
        f"user.set_password({PASSWORD!r})\n"
        "user.save()\n",
    )
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", slug)
    expect(members(alice, slug)).to_have_count(100)
    expect(members(alice, slug).last).to_have_text("𠮷田")

    # "﨑" comes before "𠮷田", the last name listed: listed at once, in its place, not counted as one more.
    chat_as(new_page, second, "﨑", slug)
    expect(members(alice, slug)).to_have_count(101)
    expect(members(alice, slug).nth(98)).to_have_text("alice")
    expect(members(alice, slug).nth(99)).to_have_text("﨑")
    expect(members(alice, slug).last).to_have_text("𠮷田")
    expect(room(alice, slug).locator(".members-count")).to_have_text("(102)")
    expect(room(alice, slug).get_by_role("button", name="1 more")).to_be_visible()
