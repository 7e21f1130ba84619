package turnserver

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

func TestCredentials(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAuthenticator(Config{Realm: testRealm, Users: map[string]string{"alice": "pw"}, Secret: "s"}, func() time.Time { return now })
	restUser, restPass := RESTCredentials("s", "carol", time.Minute, now)
	bare, barePass := RESTCredentials("s", "", time.Minute, now)
	expired, _ := RESTCredentials("s", "carol", -time.Second, now)
	cases := []struct {
		name, username, realm string
		wantUser              string
		wantKeyOf             string // password the key is made of
		wantErr               error
	}{
		{"configured user", "alice", testRealm, "alice", "pw", nil},
		{"rest", restUser, testRealm, "carol", restPass, nil},
		{"rest without subject", bare, testRealm, bare, barePass, nil},
		{"rest expiring now", "1800000000:carol", testRealm, "carol", "", nil},
		{"rest expired", expired, testRealm, "", "", errRESTExpired},
		{"rest subject with colon", "1800000060:a:b", testRealm, "a:b", "", nil},
		{"not a timestamp", "tomorrow:carol", testRealm, "", "", errRESTUsername},
		{"unknown", "bob", testRealm, "", "", errRESTUsername},
		{"other realm", "alice", "elsewhere", "", "", errWrongRealm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			user, key, err := a.credentials(tc.username, tc.realm)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if user != tc.wantUser {
				t.Errorf("user %q, want %q", user, tc.wantUser)
			}
			if tc.wantKeyOf != "" && string(key) != string(turn.GenerateAuthKey(tc.username, tc.realm, tc.wantKeyOf)) {
				t.Errorf("key is not MD5(%s:%s:%s)", tc.username, tc.realm, tc.wantKeyOf)
			}
		})
	}

	noREST := newAuthenticator(Config{Realm: testRealm, Users: map[string]string{"alice": "pw"}}, time.Now)
	if _, _, err := noREST.credentials(restUser, testRealm); !errors.Is(err, errUnknownUser) {
		t.Errorf("REST credentials without a secret: %v", err)
	}
}

// The password is what pion's (and coturn's) REST helper computes.
func TestRESTCredentialsMatchPion(t *testing.T) {
	user, pass := RESTCredentials("s3", "dave", time.Hour, time.Now())
	key := turn.LongTermTURNRESTAuthHandler("s3", nil)
	_, want, ok := key(&turn.RequestAttributes{Username: user, Realm: testRealm})
	if !ok || string(want) != string(turn.GenerateAuthKey(user, testRealm, pass)) {
		t.Fatalf("pion's handler disagrees on %s / %s", user, pass)
	}
}
