# Evaluation figures and reports (eval/metrics, eval/report, eval/harness), and the
# `augur eval` / `augur bench` / scripts/plot_report.py end to end on a tiny model.
augur_add_test(eval_report_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/eval_report_test.cc
               DEPS augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_py_test(eval_cli FILE tests/python/test_eval_cli.py LABELS interop)
