"""`md-csd serve`: a local web app that scores uploaded videos and images.

Flask serves the upload page and a JSON API (`app.create_app`); jobs and their results live in
SQLite beside the uploads (`jobs.JobStore`), so a restarted server loses nothing; a bounded pool
of worker threads shares one loaded detector (`jobs.WorkerPool`); uploads are checked by content
and size and stored under generated names (`uploads`). Flask and waitress are the optional extra
`md-csd-tf[serve]`: nothing outside this package and `commands/serve.py` imports them.
"""
