"""Online re-ranking from live feedback: candidates, features, the river adjuster,
the feedback join that labels published lists, and prequential quality."""
