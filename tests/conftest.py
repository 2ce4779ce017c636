import jax

# accuracy is asserted in float64; the float32 path has its own subprocess test
jax.config.update("jax_enable_x64", True)
