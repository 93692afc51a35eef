"""Fine-tuning the embedder on search judgments (`shopgen finetune-search`): data.py (pure: pairs,
hard negatives, the query-hash split) and recipe.py (Ray Train, held-out NDCG, the registry)."""
