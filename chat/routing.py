from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/youth/", consumers.YouthConsumer.as_asgi()),
    path("ws/staff/", consumers.StaffConsumer.as_asgi()),
    path("ws/partner/", consumers.PartnerConsumer.as_asgi()),
]
