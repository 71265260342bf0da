"""Airflow operators, glue only: the deferrable CI wait (ci), the CI autofix loop (autofix) and the
land task of gated/pr work (land). The work itself is in ``clone.work``; operators may import every
package but ``clone.ui``.
"""
