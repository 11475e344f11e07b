set -u
. /tmp/cmpv/bin/activate
export CI=true HF_HUB_OFFLINE=1 PYTHONPATH=/tmp/drawlog
for v in old new; do
  cd /tmp/$v && pip install -q --no-deps -e /tmp/$v >/dev/null 2>&1
  rm -rf /tmp/dl-$v /tmp/$v/.hypothesis; mkdir -p /tmp/dl-$v
  DRAWLOG_DIR=/tmp/dl-$v pytest -p drawlog -n 2 properties -p no:cacheprovider > /tmp/out-$v.txt 2>&1
  echo "$v rc $?" >> /tmp/cmp.rc
done
