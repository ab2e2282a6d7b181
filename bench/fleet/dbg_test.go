package main

import ("testing"; "time"; "fmt")

func TestDbgOutage(t *testing.T) {
	p := DefaultParams(1000)
	p.Day = 13 * time.Hour
	s := &sim{}
	_ = s
	r, _ := runSim(p, Outage)
	from := int(p.At/time.Second) - 60
	line := ""
	for i := from; i < from+60*28; i += 10 {
		sum := 0
		mx := 0
		for k := i; k < i+10; k++ { sum += int(r.counts[k]); mx = max(mx, int(r.counts[k])) }
		line += fmt.Sprintf("%d:%d/%d ", (i-from)/10, sum/10, mx)
	}
	t.Log(line)
}
