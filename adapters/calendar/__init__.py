"""Real exchange calendar (NYSE via exchange_calendars) and the wall clock."""

from adapters.calendar.nyse import NyseCalendar, SystemClock

__all__ = ["NyseCalendar", "SystemClock"]
