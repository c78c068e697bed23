"""yuyue (预约): outpatient appointment and registration platform."""

__version__ = "0.1.0"
