// FleetCron-Signature verifier for Go (standard library only). Copy VerifyFleetCron into your
// receiver. Scheme (README, "Signed requests"):
//
//	FleetCron-Signature: t=<unix seconds>,kid=<key id>,v1=<hex HMAC-SHA256>
//	v1 = HMAC-SHA256(secret of kid, "<t>.<METHOD>.<path and query as received>.<raw body>")
//
// keys maps key ids to secrets: during a rotation, hold both the old and the new key. In a
// net/http handler pass r.Method, r.RequestURI (the target as received) and the body's bytes.
// Run as a program, it reads {"method","target","body","signature","keys","now"?} as JSON on stdin
// and exits 0 ("ok") or 1 ("rejected: ..."); the tests use that to check it against real requests.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const MaxAgeSec = 300

var digits = regexp.MustCompile(`^\d+$`)
var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// VerifyFleetCron returns "" when the request is authentic, else why not.
func VerifyFleetCron(method, target string, body []byte, signature string, keys map[string]string, now int64) string {
	if signature == "" {
		return "no FleetCron-Signature header"
	}
	parts := map[string]string{}
	for _, item := range strings.Split(signature, ",") {
		name, value, _ := strings.Cut(item, "=")
		parts[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	if !digits.MatchString(parts["t"]) {
		return "bad timestamp"
	}
	t, err := strconv.ParseInt(parts["t"], 10, 64)
	if err != nil {
		return "bad timestamp"
	}
	if age := now - t; age > MaxAgeSec || age < -MaxAgeSec {
		return fmt.Sprintf("timestamp %d is more than %d s from now (%d)", t, MaxAgeSec, now)
	}
	secret, ok := keys[parts["kid"]]
	if !ok {
		return fmt.Sprintf("unknown key id %q", parts["kid"])
	}
	if !hex64.MatchString(parts["v1"]) {
		return "bad v1"
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(fmt.Sprintf("%d.%s.%s.", t, strings.ToUpper(method), target)))
	mac.Write(body)
	given, _ := hex.DecodeString(parts["v1"])
	if !hmac.Equal(mac.Sum(nil), given) {
		return "signature does not match"
	}
	return ""
}

func main() {
	var req struct {
		Method    string            `json:"method"`
		Target    string            `json:"target"`
		Body      string            `json:"body"`
		Signature string            `json:"signature"`
		Keys      map[string]string `json:"keys"`
		Now       *int64            `json:"now"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Println("rejected: bad input:", err)
		os.Exit(2)
	}
	now := time.Now().Unix()
	if req.Now != nil {
		now = *req.Now
	}
	if why := VerifyFleetCron(req.Method, req.Target, []byte(req.Body), req.Signature, req.Keys, now); why != "" {
		fmt.Println("rejected:", why)
		os.Exit(1)
	}
	fmt.Println("ok")
}
