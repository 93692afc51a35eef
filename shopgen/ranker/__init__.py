"""Learning to rank from the shop's judgments (`shopgen train-ranker`): train.py (the LambdaMART fit and
its query-grouped cross-validation), recipe.py (the job: candidates and features from the cluster,
fit, register, store with the alias). The features and the serving are indexing/ltr.py."""
