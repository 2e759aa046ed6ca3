"""The resources of an extraction job (rule extract_filters; SLURM's --mem and -t).

The copy floor of extraction (rule copy_floor) is the same checkpoint's weights written
unprocessed, timed against the extraction job it bounds, so it runs with the same resources.
"""

EXTRACT_MEM_MB = 4000
EXTRACT_RUNTIME = 30  # minutes
