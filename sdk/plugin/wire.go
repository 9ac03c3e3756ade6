package plugin

import (
	"context"
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/pb"
	"github.com/twofactor/twofactor/sdk/internal/wire"
)

// This file converts what the host sends to the wire types and what the
// plugin answers back to the public types; the plugin's direction is
// package sdk's.

func factorsFromPB(fs []string) []sdk.Factor {
	var out []sdk.Factor
	for _, f := range fs {
		out = append(out, sdk.Factor(f))
	}
	return out
}

// infoFromPB reads Info. The wire's protocol_version (field 3) is ignored:
// the version that counts is the one go-plugin negotiated (Negotiated).
func infoFromPB(r *pb.InfoResponse) sdk.Info {
	c := r.GetCapabilities()
	return sdk.Info{
		Name:        r.GetName(),
		Version:     r.GetVersion(),
		Description: r.GetDescription(),
		Capabilities: sdk.Capabilities{
			Code:                    c.GetCode(),
			Push:                    c.GetPush(),
			EnrollNeedsConfirmation: c.GetEnrollNeedsConfirmation(),
			Challenges:              factorsFromPB(c.GetChallengeFactors()),
			Factors:                 factorsFromPB(c.GetFactors()),
			MultipleCredentials:     c.GetMultipleCredentials(),
			SilentChallenges:        c.GetSilentChallenges(),
			EnrollSendsTo:           c.GetEnrollSendsTo(),
		},
		Schema:       schemaFromPB(r.GetSchema()),
		EnrollInputs: schemaFromPB(r.GetEnrollInputs()),
		CodeInput:    codeInputFromPB(r.GetCodeInput()),
		Texts:        textsFromPB(r.GetTexts()),
	}
}

// textsFromPB reads a plugin's Texts as sent; the host checks them
// (sdk.Texts.Validate). A plugin built before them sends none: the zero
// Texts, for which the host uses its generic words.
func textsFromPB(t *pb.Texts) sdk.Texts {
	return sdk.Texts{Name: t.GetName(), Choice: t.GetChoice(), SignIn: t.GetSignIn(), Enroll: t.GetEnroll(),
		Prepare: t.GetPrepare(), SetupTitle: t.GetSetupTitle(), Setup: t.GetSetup(), ScanAlt: t.GetScanAlt(),
		WrongCode: t.GetWrongCode(), Waiting: t.GetWaiting()}
}

func schemaFromPB(fs []*pb.Field) sdk.Schema {
	var out sdk.Schema
	for _, f := range fs {
		out = append(out, sdk.Field{
			Name: f.GetName(), Type: sdk.FieldType(f.GetType()), Required: f.GetRequired(), Secret: f.GetSecret(),
			Default: f.GetDefault(), Help: f.GetHelp(), Enum: f.GetEnum(), Min: f.GetMin(), Max: f.GetMax(),
			Loosens: loosensFromPB(f.GetLoosens()),
			Label:   f.GetLabel(), Format: sdk.Format(f.GetFormat()),
		})
	}
	return out
}

func loosensFromPB(l *pb.Loosens) *sdk.Loosens {
	if l == nil {
		return nil
	}
	return &sdk.Loosens{Values: l.GetValues(), Higher: l.GetHigher(), Lower: l.GetLower(), Why: l.GetWhy()}
}

func activationFromPB(r *pb.ActivateResponse) sdk.Activation {
	out := sdk.Activation{Health: sdk.Health(r.GetHealth())}
	for _, d := range r.GetDiagnostics() {
		out.Diagnostics = append(out.Diagnostics, sdk.Diagnostic{Code: d.GetCode(), Message: d.GetMessage(), Value: d.GetValue(),
			Severity: sdk.Severity(d.GetSeverity()), Fix: d.GetFix()})
	}
	return out
}

func userToPB(u sdk.User) *pb.User { return &pb.User{Id: u.ID, AccountName: u.AccountName} }

func enrollReqToPB(r sdk.EnrollRequest) *pb.EnrollRequest {
	return &pb.EnrollRequest{User: userToPB(r.User), Step: string(r.Step), State: r.State, Code: r.Code, NowUnixNano: wire.UnixNano(r.Now),
		Inputs: r.Inputs, Credential: r.Credential}
}

func enrollRespFromPB(r *pb.EnrollResponse) sdk.EnrollResponse {
	d := r.GetDisplay()
	return sdk.EnrollResponse{
		State: r.GetState(), Done: r.GetDone(), Reason: sdk.Reason(r.GetReason()),
		Display: sdk.Display{
			OTPAuthURL: d.GetOtpauthUrl(), QRPNG: d.GetQrPng(), ActivationURL: d.GetActivationUrl(),
			ActivationCode: d.GetActivationCode(), Instructions: d.GetInstructions(), BarcodeURL: d.GetBarcodeUrl(),
			Public: d.GetPublic(), CodeInput: codeInputFromPB(d.GetCodeInput()),
			SignInCodeInput: codeInputFromPB(d.GetSignInCodeInput()),
		},
		Credentials: credentialsFromPB(r.GetCredentials()),
	}
}

// codeInputFromPB reads a plugin's CodeInput as sent; the host checks it
// (sdk.CodeInput.Validate). A plugin built before it sends none: the zero
// value.
func codeInputFromPB(c *pb.CodeInput) sdk.CodeInput {
	if c == nil {
		return sdk.CodeInput{}
	}
	return sdk.CodeInput{Kind: sdk.CodeKind(c.GetKind()), MinLen: int(c.GetMinLen()), MaxLen: int(c.GetMaxLen()), Label: c.GetLabel()}
}

func verifyReqToPB(r sdk.VerifyRequest) *pb.VerifyRequest {
	return &pb.VerifyRequest{
		User: userToPB(r.User), State: r.State, Code: r.Code, Factor: string(r.Factor), Txid: r.TxID,
		ClientIp: r.ClientIP, NowUnixNano: wire.UnixNano(r.Now), TrustToken: r.TrustToken,
		Failures: int32(min(max(r.Failures, 0), math.MaxInt32)),
	}
}

func verifyRespFromPB(r *pb.VerifyResponse) sdk.VerifyResponse {
	out := sdk.VerifyResponse{
		Outcome: sdk.Outcome(r.GetOutcome()), Reason: sdk.Reason(r.GetReason()), Message: r.GetMessage(),
		TxID: r.GetTxid(), Details: r.GetDetails(),
		Unprompted: r.GetUnprompted(), TrustToken: r.GetTrustToken(),
	}
	if r.GetStateSet() {
		out.State = r.GetState()
		if out.State == nil {
			out.State = []byte{}
		}
	}
	return out
}

func challengeReqToPB(r sdk.ChallengeRequest) *pb.ChallengeRequest {
	return &pb.ChallengeRequest{User: userToPB(r.User), State: r.State, Factor: string(r.Factor),
		ClientIp: r.ClientIP, NowUnixNano: wire.UnixNano(r.Now)}
}

func challengeRespFromPB(r *pb.ChallengeResponse) sdk.ChallengeResponse {
	out := sdk.ChallengeResponse{
		TxID: r.GetTxid(), Message: r.GetMessage(), Public: r.GetPublic(),
		ExpiresAt: wire.FromUnixNano(r.GetExpiresAtUnixNano()), ResendAfter: wire.FromUnixNano(r.GetResendAfterUnixNano()),
	}
	if r.GetStateSet() {
		out.State = r.GetState()
		if out.State == nil {
			out.State = []byte{}
		}
	}
	return out
}

// ErrUnreachable marks an error where the provider process could not be
// reached at all (it crashed, or its connection broke). The host restarts
// the plugin on it; the same error is also an *sdk.Error of
// sdk.KindUnavailable.
var ErrUnreachable = errors.New("provider plugin unreachable")

// fromStatus turns a gRPC error back into the provider's typed error.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %w", ErrUnreachable, &sdk.Error{Kind: sdk.KindUnavailable, Message: err.Error()})
	}
	for _, d := range st.Details() {
		if det, ok := d.(*pb.ErrorDetail); ok {
			return &sdk.Error{Kind: sdk.Kind(det.GetKind()), Field: det.GetField(), Message: det.GetMessage(), Fix: det.GetFix()}
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("provider call: %w", context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("provider call: %w", context.Canceled)
	case codes.Unavailable:
		// No detail: the transport failed, not the provider.
		return fmt.Errorf("%w: %w", ErrUnreachable, &sdk.Error{Kind: sdk.KindUnavailable, Message: st.Message()})
	}
	return &sdk.Error{Kind: sdk.KindInternal, Message: fmt.Sprintf("provider returned %s: %s", st.Code(), st.Message())}
}

func credentialsFromPB(cs []*pb.Credential) []sdk.Credential {
	var out []sdk.Credential
	for _, c := range cs {
		out = append(out, sdk.Credential{ID: c.GetId(), Label: c.GetLabel(),
			CreatedAt: wire.FromUnixNano(c.GetCreatedUnixNano()), LastUsedAt: wire.FromUnixNano(c.GetLastUsedUnixNano())})
	}
	return out
}
