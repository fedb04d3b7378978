from django.urls import path

from . import views

urlpatterns = [
    path("", views.home),
    path("login", views.login),
    path("article/<slug:slug>", views.article),
    path("recommended", views.recommended),
    path("inbox", views.inbox),
    path("logout-everywhere", views.logout_everywhere),
]
