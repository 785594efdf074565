"""The study's stages, one module each; ``toolkit.study.pipeline.PIPELINE`` lists them in order.

Each module has one public ``run(ctx, given)``: ``given`` holds the results
the stage declares as its inputs, and it returns the results it hands on, or,
for a stage the stage log may skip, a ``_stages.Cached`` saying how to compute
them (writing the stage's files) and how to read them back from those files.
"""
