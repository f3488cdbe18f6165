"""Sources, probing, sampling, models, encoder, compressor, selection and answerer.

Knows nothing of Gradio, argv or Ray.
"""
