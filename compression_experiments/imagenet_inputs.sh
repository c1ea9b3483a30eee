# Sourced by compression_experiments/{vgg16,resnet50}/train.sh, run from the repository root:
#   check_imagenet_inputs TRAIN_VAL WEIGHTS NET_NAME
# Reads the data sources and mean files from TRAIN_VAL, and for each one missing (and for a
# missing WEIGHTS caffemodel) prints what it is and the command that makes it, then exits 1.
# The full recipe is data/README.md. Set ILSVRC to your ImageNet folder to get commands you can
# paste (it should hold train/ with one folder per class and val/ with the 50,000 val images).
check_imagenet_inputs() {
  tv=$1; weights=$2; net=$3; missing=0
  img=${ILSVRC:-/path/to/ILSVRC2012}
  # "<phase> <source>" per data layer, in file order
  sources=$(awk '/phase: *TRAIN/{p="train"} /phase: *TEST/{p="val"}
                 /^ *source:/{s=$0; sub(/^ *source: *"/, "", s); sub(/".*/, "", s); print p, s}' "$tv")
  train_db=""
  while read -r phase db; do
    [ -n "$db" ] || continue
    [ "$phase" = train ] && train_db=$db
    [ -d "$db" ] && continue
    missing=1
    list=$(dirname "$db")/$phase.txt
    echo "train.sh: missing $phase LMDB $db (source in $tv); make it with (see data/README.md):" >&2
    echo "  mkdir -p $(dirname "$db")" >&2
    if [ "$phase" = train ]; then
      echo "  prunekit data list $img/train --out $list" >&2
      echo "  prunekit data imageset --resize_height 256 --resize_width 256 --shuffle $img/train/ $list $db" >&2
    else
      echo "  prunekit data list $img/val --val_labels $img/val_labels.txt --out $list" >&2
      echo "  (val_labels.txt: '<file name> <label>' lines, e.g. Caffe's ilsvrc12 val.txt)" >&2
      echo "  prunekit data imageset --resize_height 256 --resize_width 256 $img/val/ $list $db" >&2
    fi
  done <<EOF
$sources
EOF
  for mean in $(sed -n 's/^ *mean_file: *"\([^"]*\)".*/\1/p' "$tv" | sort -u); do
    [ -f "$mean" ] && continue
    missing=1
    echo "train.sh: missing mean file $mean (mean_file in $tv); make it from the train LMDB with:" >&2
    echo "  prunekit data mean ${train_db:-<train LMDB>} $mean" >&2
  done
  if [ ! -f "$weights" ]; then
    missing=1
    echo "train.sh: missing pretrained $net caffemodel $weights: put the baseline model there" >&2
  fi
  [ "$missing" = 0 ] || exit 1
}
