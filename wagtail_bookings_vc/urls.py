from django.urls import path

from . import join, views, webhooks

app_name = "wagtail_bookings_vc"

urlpatterns = [
    path("join/<str:token>/", join.join, name="join"),
    path("webhooks/<str:provider_id>/", webhooks.webhook, name="webhook"),
    path("services/<slug:slug>/book/", views.book_appointment, name="book_appointment"),
    path("sessions/<int:session_id>/book/", views.book_session, name="book_session"),
    path("<str:reference>/", views.booking_detail, name="booking_detail"),
    path("<str:reference>/cancel/", views.cancel_booking, name="cancel_booking"),
    path("<str:reference>/reschedule/", views.reschedule_booking, name="reschedule_booking"),
    path("<str:reference>/calendar.ics", views.booking_ics, name="booking_ics"),
]
