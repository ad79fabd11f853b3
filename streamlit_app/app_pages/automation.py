"""Automation: what refreshes the model by itself, and who hears when a refresh fails.

Everyone sees the state; operators also get the switches, and the role is checked again at the click.
"""

from datetime import UTC, datetime

import streamlit as st

from dagster_project import alerts
from streamlit_app import access, automation_words, services
from streamlit_app.dagster_api import AUTOMATIONS, DagsterError
from streamlit_app.settings import current_connection

st.title("Automation")
st.caption("What keeps the recommendations fresh without anyone clicking, and who hears when a refresh fails.")
conn = current_connection()
user = access.current_user()
now = datetime.now(UTC).timestamp()

found: dict = {}
with services.asking_dagster():
    found = services.automations(conn)

failure_sensor = found.get("run_failure_alerts")
# What the pipeline service itself has configured (the sensor says so); the app's own settings otherwise.
said = failure_sensor.alert_channels if failure_sensor else None
channels = said if said is not None else alerts.channels_configured()
alerts_on, alert_line = automation_words.alerts_words(channels, failure_sensor.running if failure_sensor else None)
(st.success if alerts_on else st.warning)(
    alert_line,
    icon=":material/notifications_active:" if alerts_on else ":material/notifications_off:",
)
with st.expander("How alerts are set up (for the engineer)"):
    st.markdown(automation_words.ALERT_SETUP)

if not found:
    st.info(
        "The schedule and the automatic refresh cannot be shown while the pipeline service is unavailable. "
        "This page shows them again by itself when it is back.",
        icon=":material/schedule:",
    )


def switch(name: str, on: bool) -> None:
    """Operators only, checked now (a page drawn for an operator who has since lost the role refuses)."""
    who = access.require_operator()
    try:
        services.api().set_automation(name, on)
    except DagsterError as exc:
        services.show_dagster_problem(exc)
        return
    services.automations.clear()
    st.session_state["automation_switched"] = (name, on, who.name)
    st.rerun()


done = st.session_state.pop("automation_switched", None)
if done:
    name, on, _ = done
    label = automation_words.TITLES.get(name, name)
    st.success(f"{label} is now switched {'on' if on else 'off'}.", icon=":material/check_circle:")

for name in AUTOMATIONS:
    a = found.get(name)
    if a is None:
        continue
    line = automation_words.describe(a, now)
    with st.container(border=True):
        left, right = st.columns([5, 1], vertical_alignment="center")
        with left:
            icon = ":material/toggle_on:" if line.on else ":material/toggle_off:"
            st.markdown(
                f"**{line.headline}**", help=f"In Dagster: `{a.name}`" + (f", cron `{a.cron}`" if a.cron else "")
            )
            st.caption(f"{automation_words.PURPOSES.get(name, '')} {line.last}".strip())
        with right:
            if user.is_operator:
                label = "Switch off" if a.running else "Switch on"
                if st.button(label, key=f"switch_{name}", icon=icon, width="stretch"):
                    switch(name, not a.running)
if found and not user.is_operator:
    st.caption("Only operators can switch these on or off; ask one if something should change.")
elif found:
    st.caption(
        "Switching here is the same as switching in the Dagster UI (Automation), where engineers see the same state."
    )
