"""The hospital-floor pages of the visit day: the kiosk (自助机), the triage desk (分诊台),
the doctor's workstation and the waiting-room screens, over the visits services.

Kept apart from `visits/` (the domain: models, rules, services) as `portal/` is kept apart
from `booking/`: these pages are one more way in, for other people (nurses, doctors, a
device in the hall) with other sign-ins (a staff password, a kiosk key) and other screens
(full-screen, touch, a television), and they change for other reasons than the queue rules.
"""
