import pytest

from .factories import ServiceFactory, StaffFactory


@pytest.mark.django_db
def test_service_factory_stores_its_staff():
    staff = StaffFactory()
    service = ServiceFactory(staff=[staff])
    service.refresh_from_db()
    assert list(service.staff.all()) == [staff]
    assert staff.working_hours.count() == 5
