"""The service: what runs the pipeline over the store. Workers and the Ray driver take queued jobs and run the
scorers (``scoring/``) on them; the study, the dropout study and the personal-ranking jobs drive the scorers
end to end; boards are read from the store and ranked with ``ranking/``; bundled results are seeded; every
command line lives in ``service/cli/``. ``scoring/`` computes and ``ranking/`` ranks: neither reads the store."""
