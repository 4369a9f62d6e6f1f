"""WebHDFS REST API v1 (Apache Hadoop's wire format): operations, JSON bodies, RemoteException.

This is the contract unmodified HDFS clients (HdfsCLI, fsspec's webhdfs, Hadoop's own
WebHdfsFileSystem) speak. Field names, status codes and Java exception names follow
hadoop-hdfs WebHDFS.md and the NameNode's ExceptionHandler: FileNotFoundException is 404,
IllegalArgument and UnsupportedOperation are 400, every other IOException is 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.protocol.client_namenode import ClusterInfo, ContentSummary, FileStatus, LocatedBlock
from client.protocol.errors import DfsError, ErrorCode

PREFIX = "/webhdfs/v1"
#: The user a request without `user.name` acts as (Hadoop's static web user).
ANONYMOUS_USER = "dr.who"
#: Entries per LISTSTATUS_BATCH page (Hadoop's dfs.ls.limit default).
LIST_BATCH_SIZE = 1000

# Operations by HTTP method, as Hadoop's GetOpParam/PutOpParam/PostOpParam/DeleteOpParam enums.
GET_OPS = frozenset(
    {
        "OPEN",
        "GETFILESTATUS",
        "LISTSTATUS",
        "LISTSTATUS_BATCH",
        "GETCONTENTSUMMARY",
        "GETQUOTAUSAGE",
        "GETFILECHECKSUM",
        "GETHOMEDIRECTORY",
        "GETTRASHROOT",
        "GETFILEBLOCKLOCATIONS",
        "GET_BLOCK_LOCATIONS",
        "GETSERVERDEFAULTS",
        "GETSTATUS",
        "CHECKACCESS",
        "GETDELEGATIONTOKEN",
        "GETACLSTATUS",
        "GETXATTRS",
        "LISTXATTRS",
        "GETALLSTORAGEPOLICY",
        "GETSTORAGEPOLICY",
        "GETSNAPSHOTDIFF",
        "GETSNAPSHOTDIFFLISTING",
        "GETSNAPSHOTTABLEDIRECTORYLIST",
        "GETSNAPSHOTLIST",
        "GETECPOLICY",
        "GETECPOLICIES",
        "GETECCODECS",
        "GETLINKTARGET",
        "GETFILELINKSTATUS",
        "NULL",
    }
)
PUT_OPS = frozenset(
    {
        "CREATE",
        "MKDIRS",
        "RENAME",
        "SETREPLICATION",
        "SETOWNER",
        "SETPERMISSION",
        "SETTIMES",
        "CREATESYMLINK",
        "RENEWDELEGATIONTOKEN",
        "CANCELDELEGATIONTOKEN",
        "MODIFYACLENTRIES",
        "REMOVEACLENTRIES",
        "REMOVEDEFAULTACL",
        "REMOVEACL",
        "SETACL",
        "SETXATTR",
        "REMOVEXATTR",
        "ALLOWSNAPSHOT",
        "DISALLOWSNAPSHOT",
        "CREATESNAPSHOT",
        "RENAMESNAPSHOT",
        "SETSTORAGEPOLICY",
        "SATISFYSTORAGEPOLICY",
        "ENABLEECPOLICY",
        "DISABLEECPOLICY",
        "SETECPOLICY",
        "NULL",
    }
)
POST_OPS = frozenset({"APPEND", "CONCAT", "TRUNCATE", "UNSETSTORAGEPOLICY", "UNSETECPOLICY", "NULL"})
DELETE_OPS = frozenset({"DELETE", "DELETESNAPSHOT", "NULL"})
OPS_BY_METHOD = {"GET": GET_OPS, "PUT": PUT_OPS, "POST": POST_OPS, "DELETE": DELETE_OPS}
#: Hadoop's enum class per method, named in the error for an op sent with the wrong method.
OP_ENUM_BY_METHOD = {
    "GET": "org.apache.hadoop.hdfs.web.resources.GetOpParam.Op",
    "PUT": "org.apache.hadoop.hdfs.web.resources.PutOpParam.Op",
    "POST": "org.apache.hadoop.hdfs.web.resources.PostOpParam.Op",
    "DELETE": "org.apache.hadoop.hdfs.web.resources.DeleteOpParam.Op",
}
#: Operations whose bytes move between client and DataNode: the NameNode answers with a redirect.
REDIRECT_OPS = frozenset({"CREATE", "APPEND", "OPEN", "GETFILECHECKSUM"})


@dataclass(frozen=True)
class JavaException:
    """How Hadoop names an error on the wire, and the status its ExceptionHandler gives it."""

    name: str
    java_class: str
    status: int


FILE_NOT_FOUND = JavaException("FileNotFoundException", "java.io.FileNotFoundException", 404)
FILE_EXISTS = JavaException("FileAlreadyExistsException", "org.apache.hadoop.fs.FileAlreadyExistsException", 403)
ILLEGAL_ARGUMENT = JavaException("IllegalArgumentException", "java.lang.IllegalArgumentException", 400)
UNSUPPORTED = JavaException("UnsupportedOperationException", "java.lang.UnsupportedOperationException", 400)
ACCESS_CONTROL = JavaException("AccessControlException", "org.apache.hadoop.security.AccessControlException", 403)
AUTHORIZATION = JavaException(
    "AuthorizationException", "org.apache.hadoop.security.authorize.AuthorizationException", 403
)
IO_EXCEPTION = JavaException("IOException", "java.io.IOException", 403)

_BY_CODE: dict[ErrorCode, JavaException] = {
    ErrorCode.INVALID_PATH: JavaException("InvalidPathException", "org.apache.hadoop.fs.InvalidPathException", 400),
    ErrorCode.INVALID_ARGUMENT: ILLEGAL_ARGUMENT,
    ErrorCode.FILE_NOT_FOUND: FILE_NOT_FOUND,
    ErrorCode.FILE_EXISTS: FILE_EXISTS,
    ErrorCode.NOT_A_DIRECTORY: JavaException(
        "ParentNotDirectoryException", "org.apache.hadoop.fs.ParentNotDirectoryException", 403
    ),
    ErrorCode.IS_A_DIRECTORY: FILE_NOT_FOUND,  # Hadoop: "Path is not a file" (open, append, checksum)
    ErrorCode.DIRECTORY_NOT_EMPTY: JavaException(
        "PathIsNotEmptyDirectoryException", "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", 403
    ),
    ErrorCode.PERMISSION_DENIED: ACCESS_CONTROL,
    # No valid token: Hadoop's ExceptionHandler answers a SecurityException with 401.
    ErrorCode.UNAUTHENTICATED: JavaException("SecurityException", "java.lang.SecurityException", 401),
    ErrorCode.LEASE_CONFLICT: JavaException(
        "AlreadyBeingCreatedException", "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException", 403
    ),
    ErrorCode.LEASE_EXPIRED: JavaException(
        "LeaseExpiredException", "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException", 403
    ),
    ErrorCode.SAFE_MODE: JavaException(
        "SafeModeException", "org.apache.hadoop.hdfs.server.namenode.SafeModeException", 403
    ),
    ErrorCode.NOT_LEADER: JavaException("StandbyException", "org.apache.hadoop.ipc.StandbyException", 403),
    ErrorCode.NOT_SUPPORTED: UNSUPPORTED,
    ErrorCode.CHECKSUM_MISMATCH: JavaException("ChecksumException", "org.apache.hadoop.fs.ChecksumException", 403),
    ErrorCode.BLOCK_MISSING: JavaException(
        "BlockMissingException", "org.apache.hadoop.hdfs.BlockMissingException", 403
    ),
    ErrorCode.INTERNAL: JavaException("RuntimeException", "java.lang.RuntimeException", 500),
    # Backpressure: Hadoop's "try again" exception, keeping the status that says why.
    ErrorCode.TOO_MANY_REQUESTS: JavaException("RetriableException", "org.apache.hadoop.ipc.RetriableException", 429),
    ErrorCode.BUSY: JavaException("RetriableException", "org.apache.hadoop.ipc.RetriableException", 503),
}


def java_exception(error: DfsError) -> JavaException:
    """The Java exception Hadoop would raise for one of our errors (IOException by default)."""
    return _BY_CODE.get(ErrorCode(error.code), IO_EXCEPTION)


def remote_exception(exception: JavaException, message: str) -> dict[str, Any]:
    """The error body every WebHDFS client parses."""
    return {
        "RemoteException": {
            "exception": exception.name,
            "javaClassName": exception.java_class,
            "message": message,
        }
    }


def permission_string(mode: int) -> str:
    """Hadoop's octal permission without leading zeros ("644", sticky "1777")."""
    return format(mode & 0o7777, "o")


def file_status_json(status: FileStatus, path_suffix: str) -> dict[str, Any]:
    """One FileStatus object with every field Hadoop 3 sends for a plain (non-EC, no ACL) inode."""
    is_dir = status.is_dir
    return {
        "accessTime": 0 if is_dir else status.atime,
        "blockSize": 0 if is_dir else status.block_size,
        "childrenNum": status.children,
        "fileId": status.file_id,
        "group": status.group,
        "length": 0 if is_dir else status.length,
        "modificationTime": status.mtime,
        "owner": status.owner,
        "pathSuffix": path_suffix,
        "permission": permission_string(status.mode),
        "replication": 0 if is_dir else status.replication,
        "storagePolicy": 0,
        "type": "DIRECTORY" if is_dir else "FILE",
    }


def content_summary_json(summary: ContentSummary) -> dict[str, Any]:
    return {
        "ContentSummary": {
            "directoryCount": summary.directories,
            "fileCount": summary.files,
            "length": summary.length,
            "quota": -1,
            "spaceConsumed": summary.space_consumed,
            "spaceQuota": -1,
            "typeQuota": {},
        }
    }


def quota_usage_json(summary: ContentSummary) -> dict[str, Any]:
    return {
        "QuotaUsage": {
            "fileAndDirectoryCount": summary.files + summary.directories,
            "quota": -1,
            "spaceConsumed": summary.space_consumed,
            "spaceQuota": -1,
            "typeQuota": {},
        }
    }


def server_defaults_json(info: ClusterInfo) -> dict[str, Any]:
    """GETSERVERDEFAULTS: what Hadoop's client asks first. Checksums are reported as Hadoop's
    CRC32C over 512-byte chunks, the form GETFILECHECKSUM answers in."""
    return {
        "FsServerDefaults": {
            "blockSize": info.default_block_size,
            "bytesPerChecksum": 512,
            "writePacketSize": 65536,
            "replication": info.default_replication,
            "fileBufferSize": 4096,
            "encryptDataTransfer": False,
            "trashInterval": 0,
            "checksumType": "CRC32C",
            "keyProviderUri": "",
            "defaultStoragePolicyId": 7,
        }
    }


def block_locations_json(blocks: list[LocatedBlock]) -> dict[str, Any]:
    """GETFILEBLOCKLOCATIONS: Hadoop's BlockLocation per block (hosts, host:port names, racks)."""
    entries = []
    for located in blocks:
        hosts, names, topology = [], [], []
        for node in located.locations:
            authority = node.url.split("://", 1)[-1].rstrip("/")
            hosts.append(authority.rsplit(":", 1)[0])
            names.append(authority)
            topology.append(f"{node.rack.rstrip('/')}/{authority}")
        entries.append(
            {
                "cachedHosts": [],
                "corrupt": located.corrupt,
                "hosts": hosts,
                "length": located.length,
                "names": names,
                "offset": located.offset,
                "storageIds": [],
                "storageTypes": ["DISK"] * len(hosts),
                "topologyPaths": topology,
            }
        )
    return {"BlockLocations": {"BlockLocation": entries}}
