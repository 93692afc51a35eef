"""The Ray Train core that both training workflows share (`shopgen finetune`: finetune/recipe.py,
`shopgen finetune-search`: searchtune/recipe.py). A recipe brings its data, its model and its loop;
this package holds the rest:

    driver.py  on the driver: the Ray session, the run's name and config hash, the worker config,
               placement (ScalingConfig), storage (local or s3://), the TorchTrainer fit (a run of
               the same name resumes), checkpoint choice, promotion and the run's report.json
    worker.py  inside each Ray Train worker: the base model's local path, the training rows, the
               step's shard of a batch, restore from the latest checkpoint, and checkpoint + report

Layering: imports shopgen.core and shopgen.adapters only, never a workflow."""
