"""End-to-end workflows: the paper's experiments (Tables I-VI), the demo and the leaderboard.

The scripts in `experiments/` and `md-csd demo` only parse arguments and call these, so every
table is produced by the same trainer and evaluator from the named configs of `paper_configs`:

    paper_configs.py  every experiment of the paper, the demo and smoke profiles, as named configs
    runs.py           train (or reuse) one run and score it on a split: what every workflow does
    tables.py         the paper's tables: run their cells, assemble results/table_<n>.md|csv
    demo.py           `md-csd demo`: stand-in data -> face crops -> training -> tables
    leaderboard.py    every registered detector on the same split, in one table

Files they write:

    out/runs/<run>-<hash>/          one folder per trained model, shared by every table cell
                                    that needs it (`Run.folder_name`); test/ holds its FF++ test
                                    metrics, cross_celebdf/ and cross_dfd/ its cross-dataset ones
    out/results/table_<n>.md|csv    each paper table, assembled from whatever runs have finished
    out/results/tables.md           all six, the paper's numbers beside ours

A finished run is never trained again: training resumes it (or does nothing), and evaluation
files newer than the model are read instead of recomputed. Tables are written by
`evaluation.results_table`, the one place tables are formatted.
"""
