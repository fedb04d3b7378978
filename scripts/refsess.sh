# The spec reference session (10 fields of 32 B, 100 events over 100 items, 20 categories):
# MEMORY USAGE and per-sketch bytes. Usage: bash scripts/refsess.sh <path-to.so> <free-port>
so=$1; port=$2
d=$(mktemp -d); redis-server --port $port --save '' --dir $d --loadmodule $so >/dev/null & pid=$!
until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.05; done
cats=(news sports golf tennis music film books travel food tech science art games fashion health cars home garden pets finance)
args=""; for f in $(seq -w 0 9); do args="$args field_$f vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"; done
redis-cli -p $port SESSION.TOUCH ref SET 10 $args >/dev/null
for i in $(seq 0 99); do a=${cats[$((i%20))]}; b=${cats[$(((i*7+3)%20))]}; echo "SESSION.TOUCH ref EVENT item:$i CATEGORIES 2 $a $b"; done | redis-cli -p $port >/dev/null
redis-cli -p $port MEMORY USAGE ref
redis-cli -p $port SESSION.INFO ref | python3 -c "import json,sys; d=json.load(sys.stdin); a=d['activity']; print('activity bytes',a['bytes'], {k:v['bytes'] for k,v in a['sketches'].items()}, 'unique', a['unique_items'], 'mem', d.get('memory_bytes'))"
kill $pid
