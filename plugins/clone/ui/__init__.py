"""The "Clone fleet" page in the Airflow UI: read what runs recorded (data), fold it into a view (view),
render it (page, charts), serve it behind Airflow's login (app)."""
