"""*Session link* in the admin: hold one class session online or in person, and add,
change, restore or remove its meeting link, at the last minute too (R12).

Every action saves the session, so the meeting at the provider follows
(:func:`wagtail_bookings_vc.meetings.session_changed`) and the attendees whose way into
the session changed are emailed once the change is saved (R11, see
:mod:`wagtail_bookings_vc.notifications.session_changes`). Who may: booking managers, and
the instructor of the session's class (:func:`permissions.can_manage_session`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import accounts, host_links, meetings, permissions
from .models import ClassSession, GroupClass, Meeting, MeetingState, SessionFormat, SessionLink
from .notifications import session_changes
from .providers.manual import clean_meeting_url

HOLD_ONLINE = "online"
HOLD_IN_PERSON = "in_person"
USE_MY_LINK = "manual"
RESTORE_LINK = "restore"
REMOVE_LINK = "remove"
ACTIONS = (HOLD_ONLINE, HOLD_IN_PERSON, USE_MY_LINK, RESTORE_LINK, REMOVE_LINK)


def session_link_url(session: ClassSession) -> str:
    """The admin URL of a class session's *Session link* screen."""
    return reverse("wagtail_bookings_vc_admin:session_link", args=[session.pk])


def class_sessions_url(group_class: GroupClass) -> str:
    """The admin URL of the list of a class's upcoming sessions, each with its link."""
    return reverse("wagtail_bookings_vc_admin:class_sessions", args=[group_class.pk])


def can_manage_class_sessions(user: Any, group_class: GroupClass) -> bool:
    """Whether ``user`` may change the links of the sessions of ``group_class``.

    The same people as :func:`permissions.can_manage_session`: booking managers, and
    the class's instructor.
    """
    if permissions.manages_all_bookings(user):
        return True
    staff = permissions.own_staff(user)
    return staff is not None and group_class.staff_id == staff.pk


class SessionLinkForm(forms.Form):
    """A link typed in by hand for one session: ``https://`` only, like every manual link."""

    url = forms.CharField(
        label=gettext_lazy("Meeting link"),
        max_length=2048,
        help_text=gettext_lazy("An https:// link to the meeting, for example a Zoom room."),
    )
    passcode = forms.CharField(
        label=gettext_lazy("Passcode"),
        max_length=64,
        required=False,
        help_text=gettext_lazy("Sent to the attendees with their link, if the meeting has one."),
    )

    def clean_url(self) -> str:
        return clean_meeting_url(self.cleaned_data["url"])


# --------------------------------------------------------------------------------------
# The session's state, in words
# --------------------------------------------------------------------------------------


def _format_words(session: ClassSession) -> str:
    own = bool(session.format_override)
    if session.online:
        return _("Held online, for this session only.") if own else _("Held online, as the class.")
    location = session.effective_location
    if location:
        if own:
            return _("Held in person at %(place)s, for this session only.") % {"place": location}
        return _("Held in person at %(place)s, as the class.") % {"place": location}
    return (
        _("Held in person, for this session only.") if own else _("Held in person, as the class.")
    )


def _link_words(session: ClassSession) -> list[str]:
    if not session.online:
        return [_("No meeting link: it is held in person.")]
    kind = meetings.session_link_kind(session)
    group_class = session.group_class
    if kind == meetings.NO_LINK:
        return [_("No meeting link: it was removed for this session.")]
    if session.meeting_link_override == SessionLink.MANUAL:
        return [_("A link entered for this session: %(url)s") % {"url": session.meeting_url}]
    if kind == meetings.MANUAL:
        if not group_class.meeting_url:
            return [_("The class's link is entered by hand, but the class has none: enter one.")]
        return [_("The link entered by hand for the whole class.")]
    words = [_("Made automatically through the conferencing account.")]
    if not accounts.links_enabled():
        words.append(
            _(
                "The site's default conferencing account is not connected: "
                "no link shows until it is."
            )
        )
    meeting = Meeting.objects.filter(session=session).first()
    if meeting is not None and meeting.state != MeetingState.CANCELLED:
        words.append(_("Meeting: %(state)s.") % {"state": meeting.get_state_display()})
    return words


def _actions(session: ClassSession) -> list[str]:
    """What can be done to the session now."""
    if session.cancelled or session.end <= timezone.now():
        return []
    available = [HOLD_IN_PERSON if session.online else HOLD_ONLINE]
    if session.online:
        available.append(USE_MY_LINK)
        if session.meeting_link_override:
            available.append(RESTORE_LINK)
        if meetings.session_link_kind(session) != meetings.NO_LINK:
            available.append(REMOVE_LINK)
    return available


# --------------------------------------------------------------------------------------
# The actions
# --------------------------------------------------------------------------------------


def _apply(session: ClassSession, action: str, form: SessionLinkForm | None) -> None:
    group_class = session.group_class
    if action == HOLD_ONLINE:
        # Back to the class's own format where that is online, else held online on purpose.
        session.format_override = "" if group_class.online else SessionFormat.ONLINE
    elif action == HOLD_IN_PERSON:
        session.format_override = "" if not group_class.online else SessionFormat.IN_PERSON
    elif action == USE_MY_LINK and form is not None:
        session.meeting_link_override = SessionLink.MANUAL
        session.meeting_url = form.cleaned_data["url"]
        session.meeting_passcode = form.cleaned_data["passcode"]
    elif action == RESTORE_LINK:
        session.meeting_link_override = ""
        session.meeting_url = ""
        session.meeting_passcode = ""
    elif action == REMOVE_LINK:
        session.meeting_link_override = SessionLink.NONE


def _done_message(action: str) -> str:
    return {
        HOLD_ONLINE: _("The session is now held online."),
        HOLD_IN_PERSON: _("The session is now held in person."),
        USE_MY_LINK: _("The session now uses the link you entered."),
        RESTORE_LINK: _("The session uses the class's link again."),
        REMOVE_LINK: _("The session's link was removed."),
    }[action]


def _told_message(count: int) -> str:
    if not count:
        return _("Nobody needed to be emailed.")
    return ngettext(
        "%(count)d attendee is being emailed.", "%(count)d attendees are being emailed.", count
    ) % {"count": count}


@never_cache
@require_http_methods(["GET", "POST"])
def session_link(request: HttpRequest, session_id: int) -> HttpResponse:
    """Show a session's format and link in words, with a button for each change."""
    session = get_object_or_404(
        ClassSession.objects.select_related("group_class__staff"), pk=session_id
    )
    if not permissions.can_manage_session(request.user, session):
        raise PermissionDenied
    form = SessionLinkForm(
        initial={
            "url": session.meeting_url
            if session.meeting_link_override == SessionLink.MANUAL
            else "",
            "passcode": session.meeting_passcode,
        }
    )
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in _actions(session):
            messages.error(request, _("That cannot be done to this session now."))
            return redirect(session_link_url(session))
        if action == USE_MY_LINK:
            form = SessionLinkForm(request.POST)
            if not form.is_valid():
                return _page(request, session, form, status=400)
        with transaction.atomic():
            # Two people pressing buttons at once change the session one after the other.
            sessions = ClassSession.objects.select_related("group_class__staff")
            if connection.features.has_select_for_update_of:
                sessions = sessions.select_for_update(of=("self",))
            session = sessions.get(pk=session.pk)
            before = session_changes.link_state(session)
            _apply(session, action, form if action == USE_MY_LINK else None)
            changed = session_changes.link_state(session) != before
            told = len(session_changes.attendees_to_tell(session)) if changed else 0
            # The meeting follows, and the attendees are emailed once this commits.
            session.save()
        if changed:
            messages.success(request, f"{_done_message(action)} {_told_message(told)}")
        else:
            messages.info(request, _("The way into the session is as it was: nobody was emailed."))
        return redirect(session_link_url(session))
    return _page(request, session, form)


def _page(
    request: HttpRequest, session: ClassSession, form: SessionLinkForm, status: int = 200
) -> HttpResponse:
    group_class = session.group_class
    when = date_format(timezone.localtime(session.start), "DATETIME_FORMAT")
    title = _("Session link")
    ended = session.end <= timezone.now()
    told = 0 if ended else len(session_changes.attendees_to_tell(session))
    return TemplateResponse(
        request,
        "wagtail_bookings_vc/admin/sessions/link.html",
        {
            "page_title": title,
            "header_title": title,
            "page_subtitle": f"{group_class} – {when}",
            "header_icon": "link",
            "session": session,
            "group_class": group_class,
            "when": when,
            "format_words": _format_words(session),
            "link_words": _link_words(session),
            "actions": _actions(session),
            "ended": ended,
            "attendees_told": told,
            "form": form,
            "class_mode_automatic": group_class.meeting_link_mode == meetings.AUTOMATIC,
            "open_meeting_url": (
                host_links.open_session_meeting_url(session)
                if meetings.session_link_kind(session) != meetings.NO_LINK
                else ""
            ),
            "edit_class_url": _edit_class_url(request.user, group_class),
            "class_sessions_url": class_sessions_url(group_class),
        },
        status=status,
    )


def _edit_class_url(user: Any, group_class: Any) -> str:
    if not user.has_perm("wagtail_bookings_vc.change_groupclass"):
        return ""
    return reverse("wagtailsnippets_wagtail_bookings_vc_groupclass:edit", args=[group_class.pk])


@never_cache
@require_http_methods(["GET"])
def class_sessions(request: HttpRequest, class_id: int) -> HttpResponse:
    """A class's sessions that have not ended, each with how it is held and a *Link* button."""
    group_class = get_object_or_404(GroupClass.objects.select_related("staff"), pk=class_id)
    if not can_manage_class_sessions(request.user, group_class):
        raise PermissionDenied
    now = timezone.now()
    upcoming = group_class.sessions.filter(start__gt=now - timedelta(days=1)).order_by("start")
    rows = []
    for session in upcoming:
        session.group_class = group_class
        if session.end <= now:
            continue
        rows.append(
            {
                "session": session,
                "when": date_format(timezone.localtime(session.start), "DATETIME_FORMAT"),
                "format_words": _format_words(session),
                "link_words": _link_words(session)[0],
                "attendees": session.bookings.confirmed().count(),
                "url": session_link_url(session),
            }
        )
    title = _("Session links")
    return TemplateResponse(
        request,
        "wagtail_bookings_vc/admin/sessions/class_sessions.html",
        {
            "page_title": title,
            "header_title": title,
            "page_subtitle": str(group_class),
            "header_icon": "link",
            "group_class": group_class,
            "rows": rows,
        },
    )


urlpatterns = [
    path("sessions/<int:session_id>/link/", session_link, name="session_link"),
    path("classes/<int:class_id>/sessions/", class_sessions, name="class_sessions"),
]
