#!/bin/bash
# Quiet sweep timing, run from the repository root: the background campaign (its process group given as $1) paused
# throughout; the default first, then one channels-first run at a time. Needs CDB_DATA_ROOT (MNIST) in the
# environment; each variant's run directories go under outputs/sweep_time/<variant>.
kill -STOP -$1
D=outputs/sweep_time
date -u +"A start %FT%T" >> $D/times.txt
CDB_OUTPUT_ROOT=$D/auto /usr/bin/time -v -o $D/auto.time make table2-quick OUT=$D/auto RESULTS=$D/auto/res ARGS=trainer.length=800 > $D/auto.log 2>&1
date -u +"A end %FT%T" >> $D/times.txt
CDB_OUTPUT_ROOT=$D/one /usr/bin/time -v -o $D/one.time make table2-quick PACK=1 OUT=$D/one RESULTS=$D/one/res ARGS="trainer.channels_last=false trainer.length=800" > $D/one.log 2>&1
date -u +"B end %FT%T" >> $D/times.txt
kill -CONT -$1
