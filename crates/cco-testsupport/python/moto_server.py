"""moto_server, plus CloudFront origin access identities (OAI).

moto (up to 5.2.5, the newest on PyPI when this was written) implements CloudFront distributions and
origin access controls but not origin access identities, which the reference `ccoctl aws
--create-private-s3-bucket` creates. This adds the five OAI operations to moto's own CloudFront
service, with AWS's behaviour where the tests depend on it: `If-Match` must carry the current ETag,
and an identity still named by a distribution's S3 origin cannot be deleted. moto also keeps an
origin's `S3OriginConfig` and `OriginAccessControlId` but leaves them out of its answers; AWS
returns them, so they are returned here too. Everything else is moto.

It also adds IAM's AddClientIDToOpenIDConnectProvider and RemoveClientIDFromOpenIDConnectProvider
(moto 5.2 answers both with a 500), with AWS's documented behaviour: adding a client ID the provider
already has, or removing one it does not have, does nothing; a client ID is at most 255 characters.

Usage: python moto_server.py [moto_server arguments]   (same arguments as `moto_server`)
"""

import sys

from moto.cloudfront import urls
from moto.cloudfront.models import Origin, random_id
from moto.cloudfront.exceptions import CloudFrontException
from moto.cloudfront.responses import CloudFrontResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.moto_api._internal import mock_random
from moto.iam.exceptions import ValidationError as IamValidationError
from moto.iam.responses import IamResponse
from moto.server import main

PREFIX = "{0}/2020-05-31/origin-access-identity/cloudfront"


class OaiError(CloudFrontException):
    """An error of the CloudFront model; moto takes its HTTP status from the model's shape."""


class Oai:
    def __init__(self, config):
        self.id = "E" + random_id(length=13)
        self.s3_canonical_user_id = mock_random.get_random_hex(64)
        self.caller_reference = config.get("CallerReference", "")
        self.comment = config.get("Comment", "")
        self.etag = random_id(length=14)

    def config(self):
        return {"CallerReference": self.caller_reference, "Comment": self.comment}

    def full(self):
        return {
            "Id": self.id,
            "S3CanonicalUserId": self.s3_canonical_user_id,
            "CloudFrontOriginAccessIdentityConfig": self.config(),
        }


def _store(backend):
    if not hasattr(backend, "cco_oais"):
        backend.cco_oais = {}
    return backend.cco_oais


def _get(backend, oai_id):
    oai = _store(backend).get(oai_id)
    if oai is None:
        raise OaiError(
            "NoSuchCloudFrontOriginAccessIdentity",
            "The specified origin access identity does not exist.",
        )
    return oai


def create_cloud_front_origin_access_identity(self):
    config = self._get_param("CloudFrontOriginAccessIdentityConfig", {})
    store = _store(self.backend)
    for oai in store.values():
        if oai.caller_reference == config.get("CallerReference"):
            if oai.comment != config.get("Comment", ""):
                raise OaiError(
                    "CloudFrontOriginAccessIdentityAlreadyExists",
                    "The caller reference is already associated with another identity.",
                )
            break
    else:
        oai = Oai(config)
        store[oai.id] = oai
    return ActionResult(
        {
            "CloudFrontOriginAccessIdentity": oai.full(),
            "Location": f"https://cloudfront.amazonaws.com/2020-05-31/origin-access-identity/cloudfront/{oai.id}",
            "ETag": oai.etag,
        }
    )


def get_cloud_front_origin_access_identity(self):
    oai = _get(self.backend, self._get_param("Id"))
    return ActionResult({"CloudFrontOriginAccessIdentity": oai.full(), "ETag": oai.etag})


def get_cloud_front_origin_access_identity_config(self):
    oai = _get(self.backend, self._get_param("Id"))
    return ActionResult(
        {"CloudFrontOriginAccessIdentityConfig": oai.config(), "ETag": oai.etag}
    )


def list_cloud_front_origin_access_identities(self):
    items = [
        {"Id": o.id, "S3CanonicalUserId": o.s3_canonical_user_id, "Comment": o.comment}
        for o in _store(self.backend).values()
    ]
    return ActionResult(
        {
            "CloudFrontOriginAccessIdentityList": {
                "Marker": "",
                "MaxItems": 100,
                "IsTruncated": False,
                "Quantity": len(items),
                "Items": items,
            }
        }
    )


def delete_cloud_front_origin_access_identity(self):
    oai = _get(self.backend, self._get_param("Id"))
    if_match = self.headers.get("If-Match")
    if not if_match:
        raise OaiError("InvalidIfMatchVersion", "The If-Match version is missing.")
    if if_match != oai.etag:
        raise OaiError("PreconditionFailed", "The If-Match version does not match.")
    ref = f"origin-access-identity/cloudfront/{oai.id}"
    for dist in self.backend.distributions.values():
        origins = getattr(dist.distribution_config, "Origins", {}).get("Items", [])
        for origin in origins:
            if getattr(origin, "s3_access_identity", "") == ref:
                raise OaiError(
                    "CloudFrontOriginAccessIdentityInUse",
                    "The Origin Access Identity specified is still associated with one or more distributions.",
                )
    del _store(self.backend)[oai.id]
    return EmptyResult()


_origin_init = Origin.__init__


def _origin_init_keeping_access(self, origin):
    _origin_init(self, origin)
    # Attribute names are what moto's serializer looks up for the output shape's members.
    if "S3OriginConfig" in origin:
        self.s3_origin_config = {
            "OriginAccessIdentity": origin["S3OriginConfig"].get("OriginAccessIdentity", "")
        }
    if origin.get("OriginAccessControlId"):
        self.origin_access_control_id = origin["OriginAccessControlId"]


Origin.__init__ = _origin_init_keeping_access

for fn in (
    create_cloud_front_origin_access_identity,
    get_cloud_front_origin_access_identity,
    get_cloud_front_origin_access_identity_config,
    list_cloud_front_origin_access_identities,
    delete_cloud_front_origin_access_identity,
):
    setattr(CloudFrontResponse, fn.__name__, fn)



def add_client_id_to_open_id_connect_provider(self):
    provider = self.backend.get_open_id_connect_provider(
        self._get_param("OpenIDConnectProviderArn")
    )
    client_id = self._get_param("ClientID")
    if not client_id or len(client_id) > 255:
        raise IamValidationError(
            "1 validation error detected: Value at 'clientID' failed to satisfy constraint: "
            "Member must have length between 1 and 255"
        )
    if client_id not in provider.client_id_list:
        provider.client_id_list.append(client_id)
    return EmptyResult()


def remove_client_id_from_open_id_connect_provider(self):
    provider = self.backend.get_open_id_connect_provider(
        self._get_param("OpenIDConnectProviderArn")
    )
    client_id = self._get_param("ClientID")
    provider.client_id_list = [c for c in provider.client_id_list if c != client_id]
    return EmptyResult()


for fn in (
    add_client_id_to_open_id_connect_provider,
    remove_client_id_from_open_id_connect_provider,
):
    setattr(IamResponse, fn.__name__, fn)

urls.url_paths[PREFIX + "$"] = CloudFrontResponse.dispatch
urls.url_paths[PREFIX + "/(?P<oai_id>[^/]+)$"] = CloudFrontResponse.dispatch
urls.url_paths[PREFIX + "/(?P<oai_id>[^/]+)/config$"] = CloudFrontResponse.dispatch

if __name__ == "__main__":
    main(sys.argv[1:])
