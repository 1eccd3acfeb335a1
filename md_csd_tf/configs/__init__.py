"""Named configurations of experiments, one small file each (big_vision's `configs/`).

Each module's docstring gives the command, what it produces (the paper's numbers) and what it
costs. `pretrain_sbi`: `get_config()` returns its frozen config, `get_config(smoke=True)` the
seconds-long variant the tests run. `table1` ... `table6`: the paper's Tables I-VI, whose
`get_config()` lists the table's cells (`workflows.paper_configs.EXPERIMENTS` reads them; the
demo and smoke profiles shrink every cell alike).
"""
