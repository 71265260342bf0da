"""The "Clone fleet" page in the Airflow UI: read what runs recorded (data), fold it into a view (view),
render it (page, charts), serve it behind Airflow's login (app). May import ``clone.workflow`` (the
record's shape) and ``clone.notify``; nothing imports it but the plugin file.
"""
