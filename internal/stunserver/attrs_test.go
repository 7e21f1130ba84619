package stunserver

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pion/stun/v4"
)

// rawMessage builds a Binding request whose attributes are written as is,
// so a test can hand a getter a value of any length.
func rawMessage(t *testing.T, attrs ...stun.RawAttribute) *stun.Message {
	t.Helper()
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	for _, a := range attrs {
		m.Add(a.Type, a.Value)
	}
	decoded := new(stun.Message)
	if err := stun.Decode(m.Raw, decoded); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return decoded
}

func TestChangeRequestCodec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   []byte
		want    ChangeRequest
		wantErr error
	}{
		{name: "none", value: []byte{0, 0, 0, 0}},
		{name: "ip", value: []byte{0, 0, 0, 4}, want: ChangeRequest{IP: true}},
		{name: "port", value: []byte{0, 0, 0, 2}, want: ChangeRequest{Port: true}},
		{name: "both", value: []byte{0, 0, 0, 6}, want: ChangeRequest{IP: true, Port: true}},
		{name: "unused bits ignored", value: []byte{0xff, 0xff, 0xff, 0xf9}, want: ChangeRequest{Port: false, IP: false}},
		{name: "short", value: []byte{0, 4}, wantErr: errAttrLength},
		{name: "long", value: []byte{0, 0, 0, 4, 0, 0, 0, 0}, wantErr: errAttrLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := rawMessage(t, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: tc.value})
			var got ChangeRequest
			err := got.GetFrom(m)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, c := range []ChangeRequest{{}, {IP: true}, {Port: true}, {IP: true, Port: true}} {
		m := stun.MustBuild(stun.TransactionID, stun.BindingRequest, c)
		v, _ := m.Get(stun.AttrChangeRequest)
		var back ChangeRequest
		if err := back.GetFrom(m); err != nil || back != c || len(v) != 4 {
			t.Errorf("round trip %+v: got %+v (%d bytes), %v", c, back, len(v), err)
		}
	}
	var missing ChangeRequest
	if err := missing.GetFrom(rawMessage(t)); !errors.Is(err, stun.ErrAttributeNotFound) {
		t.Errorf("missing: %v", err)
	}
}

func TestResponsePortCodec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   []byte
		want    ResponsePort
		wantErr error
	}{
		{name: "with padding", value: []byte{0x12, 0x34, 0, 0}, want: 0x1234},
		{name: "two bytes", value: []byte{0xff, 0xfe}, want: 0xfffe},
		{name: "one byte", value: []byte{1}, wantErr: errAttrLength},
		{name: "eight bytes", value: make([]byte, 8), wantErr: errAttrLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := rawMessage(t, stun.RawAttribute{Type: stun.AttrResponsePort, Value: tc.value})
			var got ResponsePort
			err := got.GetFrom(m)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest, ResponsePort(40000))
	v, _ := m.Get(stun.AttrResponsePort)
	if !bytes.Equal(v, []byte{0x9c, 0x40, 0, 0}) {
		t.Errorf("RESPONSE-PORT 40000 encoded as %x", v)
	}
}

func TestPaddingCodec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pad     Padding
		wantErr error
	}{
		{name: "empty", pad: 0},
		{name: "odd", pad: 3},
		{name: "natdiscovery", pad: 1500},
		{name: "over", pad: MaxPadding + 1, wantErr: errPadding},
		{name: "negative", pad: -1, wantErr: errPadding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := stun.New()
			m.Type = stun.BindingRequest
			m.WriteHeader()
			err := tc.pad.AddTo(m)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			decoded := new(stun.Message)
			if err := stun.Decode(m.Raw, decoded); err != nil {
				t.Fatal(err)
			}
			var got Padding
			if err := got.GetFrom(decoded); err != nil || got != tc.pad {
				t.Fatalf("got %d, %v; want %d", got, err, tc.pad)
			}
			// The value is padded to 4 (RFC 8489 section 14).
			if want := headerSize + 4 + (int(tc.pad)+3)/4*4; len(m.Raw) != want {
				t.Fatalf("message of %d bytes, want %d", len(m.Raw), want)
			}
		})
	}
}

func TestRoleChange(t *testing.T) {
	for _, tc := range []struct {
		from     role
		ip, port bool
		want     role
	}{
		{rolePrimary, false, false, rolePrimary},
		{rolePrimary, true, false, roleAltIP},
		{rolePrimary, false, true, roleAltPort},
		{rolePrimary, true, true, roleAltBoth},
		{roleAltIP, true, false, rolePrimary},
		{roleAltPort, true, false, roleAltBoth},
		{roleAltBoth, false, true, roleAltIP},
	} {
		if got := tc.from.change(tc.ip, tc.port); got != tc.want {
			t.Errorf("%s.change(%v, %v) = %s, want %s", tc.from, tc.ip, tc.port, got, tc.want)
		}
	}
	for r := range role(numRoles) {
		if r.other().other() != r || r.other()&roleAltIP == r&roleAltIP || r.other()&roleAltPort == r&roleAltPort {
			t.Errorf("%s.other() = %s", r, r.other())
		}
	}
}
