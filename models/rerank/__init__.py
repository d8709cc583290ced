"""The river re-ranker: candidates, features, live signals, adjusters, the feedback join,
drift, purchase propensity and prequential quality. Pure ML: no Kafka, no Faust."""
