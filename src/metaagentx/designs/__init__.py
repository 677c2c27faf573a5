"""Example designs, one workflow script per pattern (shipped with the package for the designer
prompt, the teacher and the tests). They are scripts, not modules: each runs its workflow when
executed, so never import them; read their source (see `metaagentx.rollout.prompts.load_examples`)."""
