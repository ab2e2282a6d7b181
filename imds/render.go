package imds

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
)

// timeFormat is the only expiry format botocore parses.
const timeFormat = "2006-01-02T15:04:05Z"

type imdsBody struct {
	Code            string
	LastUpdated     string
	Type            string
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	Token           string
	Expiration      string
	AccountID       string `json:"AccountId,omitempty"`
}

func imdsDoc(c *agent.Credentials, withAccount bool) []byte {
	b := imdsBody{
		Code: "Success", Type: "AWS-HMAC",
		LastUpdated:     c.Issued.UTC().Format(timeFormat),
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		Token:           c.SessionToken,
		Expiration:      c.Expiration.UTC().Format(timeFormat),
	}
	if withAccount {
		b.AccountID = c.AccountID
	}
	// Compact, unlike EC2's indented JSON: no SDK cares, and the body is
	// kept per cached session.
	out, _ := json.Marshal(b)
	return out
}

func renderIMDS(c *agent.Credentials) []byte         { return imdsDoc(c, false) }
func renderIMDSExtended(c *agent.Credentials) []byte { return imdsDoc(c, true) }

func renderECS(c *agent.Credentials) []byte {
	out, _ := json.Marshal(struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      string
		RoleArn         string
		AccountID       string `json:"AccountId,omitempty"`
	}{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(timeFormat), c.RoleARN, c.AccountID})
	return out
}

// instanceID is a stable, EC2-shaped id for this sidecar's emulated instance.
func instanceID(c *config.Config) string {
	h := sha256.Sum256([]byte(c.Region + "/" + strings.Join(c.Listen, ",")))
	return "i-" + hex.EncodeToString(h[:])[:17]
}

// instanceProfileID is an AIPA-prefixed id derived from the role name.
func instanceProfileID(role string) string {
	h := sha256.Sum256([]byte("instance-profile/" + role))
	return "AIPA" + base32.StdEncoding.EncodeToString(h[:])[:17]
}
