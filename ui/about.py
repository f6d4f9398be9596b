"""The About tab and the empty state: what each score means, the protocol, how to cite."""

EMPTY_STATE = """\
### Nothing to rank yet
This store has no scores. Fill it in one of these ways:

```bash
python -m data seed-snapshot                             # the bundled offline study (the app does this at start)
python -m data import-published                          # IBM's published 2023 results (needs network)
python -m data import-published --source ../shared/anchors/model_recycling   # the same, offline
python -m data crawl --base FacebookAI/roberta-base --limit 50   # then score the crawled candidates
```

Then reload this page.
"""

ABOUT = """\
## What this leaderboard answers
*Which checkpoint on the Hugging Face Hub should I fine-tune from?* Many finetuned models are better
starting points than the base model they came from ("intertraining"). For each base architecture we
crawl its finetuned descendants and score them.

## The scores
- **Target score**: accuracy on a target dataset after fine-tuning the model on it (Spearman for STS-B),
  stored as a fraction and shown ×100.
- **Intertraining gain** (points): for the project's runs, the candidate's run minus the base's run on the same
  seed, averaged over the seeds both ran; for published runs, the score minus the base's mean over its seeds.
  **Mean gain** is its mean over the suite's targets, leaving out by default a target the model's card says it
  was trained on (the zero-shot estimand; "Include the targets a model was trained on" puts them back). A model with
  no score on a target it was not trained on gets no mean gain: it is listed, never ranked on a partial average.
- **95% interval and "beats base"**: for the project's runs, Student t on the paired differences with their seed
  variance pooled within targets (no interval below 2 degrees of freedom); for published runs, Welch–Satterthwaite
  t from the seed variances of base and candidate. A model "beats the base" when the whole interval lies above 0.
- **Probe**: accuracy of a linear classifier trained on frozen features (MNLI on the published
  leaderboard, `mnli_lp`): the cheap stage-1 filter that picks which models get the full run.
- **Free energy** (lower is better): F = n·L_n(w*) + λ̂·log n on the pretraining objective (masked-LM
  loss) over a reference corpus, λ̂ the local learning coefficient of the encoder's last layer estimated by SGLD
  at the checkpoint (Munn & Wei 2025; the layers below held fixed). It needs no downstream data. Every model,
  the base included, gets its own head: it starts as the corpus's unigram model and is fitted on its frozen
  encoder's features until held-out windows stop improving. An estimate counts only when it passes every check
  of its convergence gate (chains that agree, a Monte-Carlo error under 10% of λ̂, a step accepted after burn-in,
  the draws' two halves in agreement, a checkpoint near a critical point, a loss below the unigram model's);
  otherwise it is shown as unconverged and never ranked. λ̂ (± its standard error) and L_n(w*) are shown beside F;
  Insights reports how each predictor tracks the mean gain.
- **Labels saved**: how many target labels a LoRA fine-tune of the candidate saves against the base at
  the same accuracy (sample efficiency).

## The bundled study
A fresh install shows the offline study (`python -m scoring study`): all-MiniLM-L6-v2 fine-tuned on each of
the 12 local datasets as a *source* task, every source row that shares text with a target's eval or test split
removed first. Each source model is checked on its own task's test split; the ones that learned it (10 of 12 in
the bundled run) are the candidates, intertrained on 4 targets with 5 paired seeds against 5 base seeds, and
every predictor (probe, kNN, LogME, free energy) is computed on those same checkpoints. Insights reports what
it found, with one 95% interval (Student t on the paired differences, seed variance pooled within targets; none
below 2 degrees of freedom) whatever its sign: how many models beat the base, the power of the design, the
source x target gain matrix, the runs each check failed, and how each predictor tracks the mean gain.
Your own scores always take precedence over the bundled ones.

## Protocols never mix
Every score carries the hash of its full configuration (hyper-parameters, suite, seeds). A leaderboard
compares scores of one protocol per scorer, and the published 2023 results are a separate source.

## Published results (2023)
The "published-2023" source is IBM's model-recycling data (Choshen et al., 2023): stage 1 a linear
probe on MNLI for every model; stage 2 full fine-tuning on 36 targets (10 epochs, lr 5e-5 with linear
decay and 0.6% warm-up, batch 256, AdamW weight decay 0.01, early stopping), the base model 20 times per
target. Its ranking sorts by the mean of the 36 scores, ties by the probe.

## How to cite
Leshem Choshen, Elad Venezian, Shachar Don-Yehiya, Noam Slonim, Yoav Katz. *Where to start? Analyzing
the potential value of intermediate models.* EMNLP 2023 (arXiv:2211.00107).
Andrew Munn, Susan Wei. *A Bayesian Model Selection Criterion for Selecting Pretraining Checkpoints.*
ICML 2025 (arXiv:2410.05612).
"""
