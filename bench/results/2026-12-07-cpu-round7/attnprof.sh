# in-situ decode attention: bench latency --profile (Q4_0 stories110M, batch 1, 32 in / 96 out), median pagedAttention
# call of the decode steps, and the median step, per addon, addons alternating
cd /work/main
for r in $(seq 1 ${ROUNDS:-3}); do for a in $ADDONS; do
  MINI_VLLM_ADDON=/tmp/r7/addon-$a.node node dist/lib/cli.js bench latency -m /tmp/s110/${FILE:-q4_0}.gguf --device cpu --input-len 32 --output-len 96 --batch-size 1 --num-iters 1 --profile /tmp/r7/p-$a.json --profile-steps 90 >/dev/null 2>&1
  node -e "
const t=JSON.parse(require('fs').readFileSync('/tmp/r7/p-$a.json','utf8'));
const ev=(t.traceEvents||t).filter(e=>e.ph==='X');
const med=a=>{a=[...a].sort((x,y)=>x-y);return a[a.length>>1]};
const pa=ev.filter(e=>e.name==='pagedAttention'&&e.args.query.startsWith('float32[1,')).map(e=>e.dur);
const st=ev.filter(e=>e.name==='step'&&e.args.numDecodes===1).map(e=>e.dur);
const ql=ev.filter(e=>e.name==='quantLinearPacked'&&e.args.x.startsWith('float32[1,')).map(e=>e.dur).reduce((a,b)=>a+b,0)/st.length;
console.log('round $r $a: decode pagedAttention median', med(pa).toFixed(1), 'us; step median', (med(st)/1e3).toFixed(2), 'ms; quantLinearPacked per step', (ql/1e3).toFixed(2), 'ms');"
done; done
