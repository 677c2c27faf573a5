"""The programmatic teacher's designs for the synthetic suite: one short script per pattern.

Deliberately tiny (a ~1M-parameter model must learn to write them token by token) and built on
one skeleton, so the patterns differ in as few tokens as possible. They are scripts, not
modules: never import them; `metaagentx.rollout.prompts.load_examples(TEACHER_DESIGNS_DIR)`
reads them (the docstring is the design's analysis line)."""
